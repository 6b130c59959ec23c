"""GAN training speed: a plain PyTorch DCGAN loop (the PyTorch DCGAN example's way: PIL images through a DataLoader,
fp32, separate real and fake backward passes, `.item()` every step) against medimb's `GANTrainer` (device-resident
uint8 data, bf16 autocast on GPU, channels_last, the one TrainLoop), same networks, same batch, same image size,
measured in one run on one device, at each size asked for. Images/s counts real images through the discriminator.
Prints a Markdown table.

    python bench/gan_speed.py --device cuda                                  # 64 and 128 px, DCGAN widths (64), batch 64
    python bench/gan_speed.py --device cuda --gan wgan-gp                   # medimb's WGAN-GP beside the plain DCGAN loop
    python bench/gan_speed.py --device cpu --sizes 32 --steps 3 --width 8 --batch 8 --threads 1   # smoke test
"""
from __future__ import annotations
import argparse, json, platform, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='auto', help="'auto', 'cuda', 'cpu' ...")
    p.add_argument('--sizes', type=int, nargs='+', default=[64, 128], help='image sides in pixels')
    p.add_argument('--steps', type=int, default=50, help='timed generator steps of each loop (after --warmup)')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps first (cuDNN autotuning)')
    p.add_argument('--batch', type=int, default=64, help='real images per discriminator update (both loops)')
    p.add_argument('--width', type=int, default=64, help='ndf = ngf: channels of the first discriminator layer (the example: 64)')
    p.add_argument('--latent', type=int, default=100, help='nz, the noise size (the example: 100)')
    p.add_argument('--gan', default='dcgan', help="medimb's GAN (the plain loop is always the DCGAN)")
    p.add_argument('--precision', default='auto', help="medimb's precision: 'auto' (bf16 on GPU) or 'fp32'")
    p.add_argument('--workers', type=int, default=2, help="the plain loop's DataLoader workers (the example's default: 2)")
    p.add_argument('--n-images', type=int, default=512, help='training images (phantom chest radiographs)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (1 avoids contention on a busy CPU)')
    p.add_argument('--out', default=None, help='also write the numbers to this JSON file')
    return p.parse_args(argv)


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def plain_loop(ds, size, args, dev):
    "The PyTorch DCGAN example's inner loop on medimb's DCGAN networks, fp32, real and fake batches in two backward passes."
    from PIL import Image
    from torchvision import transforms
    from medimb.gans import GANConfig, build_gan
    pil = [Image.fromarray(im[0], 'L') for im in ds.images]
    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    class PILSet(torch.utils.data.Dataset):
        def __len__(self): return len(pil)
        def __getitem__(self, i): return tf(pil[i])
    loader = torch.utils.data.DataLoader(PILSet(), batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
                                         pin_memory=dev.type == 'cuda', persistent_workers=args.workers > 0)
    torch.manual_seed(0)
    G, D = (m.to(dev) for m in build_gan(GANConfig('dcgan', latent_dim=args.latent, width=args.width), size, 1, None))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)); optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    def batches():
        while True: yield from loader
    it = batches()
    def step():
        real = next(it).to(dev); b = len(real)
        D.zero_grad()
        errD_real = F.binary_cross_entropy_with_logits(D(real), torch.ones(b, device=dev)); errD_real.backward()
        fake = G(torch.randn(b, args.latent, device=dev))
        errD_fake = F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(b, device=dev)); errD_fake.backward()
        optD.step()
        G.zero_grad()
        errG = F.binary_cross_entropy_with_logits(D(fake), torch.ones(b, device=dev)); errG.backward(); optG.step()
        return errD_real.item() + errD_fake.item(), errG.item()   # the example logs every step
    for _ in range(args.warmup): step()
    sync(dev); t0 = time.perf_counter()
    for _ in range(args.steps): step()
    sync(dev)
    return args.steps * args.batch / (time.perf_counter() - t0)


def medimb_loop(ds, size, args, dev):
    "medimb's GANTrainer: the same networks and batch on the one TrainLoop."
    from medimb.gans import GANConfig, GANTrainer
    cfg = GANConfig(args.gan, latent_dim=args.latent, width=args.width, batch_size=args.batch, train_steps=args.warmup + args.steps,
                    precision=args.precision, log_every=max(1, args.steps), checkpoint_every=10**9)
    t = GANTrainer(cfg, ds, conditional=False, device=dev, seed=0)
    bench = torch.backends.cudnn.benchmark; torch.backends.cudnn.benchmark = dev.type == 'cuda'
    try:
        t.train(args.warmup); sync(dev); t0 = time.perf_counter()
        t.train(args.warmup + args.steps); sync(dev)
    finally: torch.backends.cudnn.benchmark = bench
    return args.steps * args.batch * cfg.critic_steps / (time.perf_counter() - t0), t.loop.precision


def main(argv=None):
    args = parse(argv)
    if args.threads: torch.set_num_threads(args.threads)
    from medimb.core import get_device
    from medimb.data import phantom
    dev = get_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or platform.machine()
    rows = []
    for size in args.sizes:
        ds = phantom(args.n_images, size, ratio=0.0, seed=0)
        plain = plain_loop(ds, size, args, dev)
        fast, prec = medimb_loop(ds, size, args, dev)
        rows.append(dict(size=size, batch=args.batch, plain_images_per_second=plain, medimb_images_per_second=fast, medimb_precision=prec,
                         gan=args.gan, speedup=fast / plain))
    print(f"\n**GAN training speed** on {dev} ({name}), torch {torch.__version__}: DCGAN networks, width {args.width}, "
          f"nz {args.latent}, batch {args.batch}, {args.steps} timed steps after {args.warmup}")
    print(f'| size | plain DCGAN loop (fp32, DataLoader) | medimb {args.gan} | precision | × plain |')
    print('|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['size']} px | {r['plain_images_per_second']:.1f} images/s | {r['medimb_images_per_second']:.1f} images/s | "
              f"{r['medimb_precision']} | {r['speedup']:.2f} |")
    if args.out: Path(args.out).write_text(json.dumps(dict(device=str(dev), name=name, rows=rows), indent=2))
    return rows


if __name__ == '__main__': main()
