"""DDPM training and sampling speed: a plain fp32 loop (the diffusers `train_unconditional` example's way) against medimb's
`DiffusionTrainer` (bf16, channels_last, device-resident uint8 data, optional torch.compile), same UNet, same resolution,
measured in one run on one device; plus medimb's sampling throughput at its default step count. Prints a Markdown table.

    python bench/ddpm_speed.py --device cuda                       # H100: 128 px, diffusers' example UNet, batch 32 vs 64
    python bench/ddpm_speed.py --device cuda --compile --batch 128
    python bench/ddpm_speed.py --device cpu --size 32 --steps 3 --width tiny --batch 8 --plain-batch 4 --sample-batch 4 --threads 1   # smoke test
"""
from __future__ import annotations
import argparse, json, math, platform, sys, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='auto', help="'auto', 'cuda', 'cpu' ...")
    p.add_argument('--size', type=int, default=128, help='image side in pixels (the example: 128)')
    p.add_argument('--steps', type=int, default=50, help='timed training steps of each loop (after --warmup)')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps first (cuDNN autotuning, torch.compile)')
    p.add_argument('--batch', type=int, default=64, help="medimb's training batch")
    p.add_argument('--plain-batch', type=int, default=32, help="the plain loop's batch (32, as in the reference measurement)")
    p.add_argument('--width', default='base', choices=['base', 'small', 'tiny'],
                   help="UNet width: 'base' is the example's (128,128,256,256,512,512) with attention at the 5th level")
    p.add_argument('--channels', type=int, default=1, choices=[1, 3], help='image channels (medimb is grayscale-native; the example is RGB)')
    p.add_argument('--compile', action='store_true', help="torch.compile medimb's denoiser")
    p.add_argument('--no-bf16', action='store_true', help='medimb in fp32 too (isolates the other changes)')
    p.add_argument('--workers', type=int, default=0, help="the plain loop's DataLoader workers (the example's default: 0)")
    p.add_argument('--n-images', type=int, default=512, help='training images (phantom chest radiographs)')
    p.add_argument('--sample-steps', type=int, default=None, help="sampler steps (default: the 'default' preset's 50 DDIM steps)")
    p.add_argument('--sample-batch', type=int, default=128, help='images per sampling batch')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s choice; 1 avoids contention on a busy CPU)')
    p.add_argument('--out', default=None, help='also write the numbers to this JSON file')
    return p.parse_args(argv)


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def plain_loop(ds, cfg, unet_kwargs, args, dev):
    "The diffusers train_unconditional example's inner loop: PIL images through a DataLoader, fp32, EMAModel, cosine schedule."
    from PIL import Image
    from torchvision import transforms
    from diffusers import UNet2DModel, DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel
    mode = 'L' if args.channels == 1 else 'RGB'
    pil = [Image.fromarray(im[0] if args.channels == 1 else im.transpose(1, 2, 0), mode) for im in ds.images]
    tf = transforms.Compose([transforms.Resize(args.size, interpolation=transforms.InterpolationMode.BILINEAR),
                             transforms.CenterCrop(args.size), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    class PILSet(torch.utils.data.Dataset):
        def __len__(self): return len(pil)
        def __getitem__(self, i): return tf(pil[i])
    loader = torch.utils.data.DataLoader(PILSet(), batch_size=args.plain_batch, shuffle=True, num_workers=args.workers,
                                         drop_last=True, pin_memory=dev.type == 'cuda')
    torch.manual_seed(0)
    model = UNet2DModel(**unet_kwargs).to(dev)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear')
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    lr_sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=500, num_training_steps=10_000)
    ema = EMAModel(model.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4)
    def batches():
        while True:
            for b in loader: yield b
    it = batches(); model.train()
    def step():
        clean = next(it).to(dev)
        noise = torch.randn(clean.shape, device=dev)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(clean),), device=dev).long()
        noisy = sched.add_noise(clean, noise, t)
        pred = model(noisy, t).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); lr_sched.step(); opt.zero_grad()
        ema.step(model.parameters())
        return loss.detach().item()   # the example logs the loss every step
    for _ in range(args.warmup): step()
    sync(dev); t0 = time.perf_counter()
    for _ in range(args.steps): step()
    sync(dev); dt = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    del model, opt, ema
    return dict(images_per_second=args.steps * args.plain_batch / dt, seconds=dt, params=params)


def medimb_loop(ds, cfg, args, dev):
    "medimb's DiffusionTrainer on the same UNet, then its sampler at the default step count."
    from medimb.ddpm import DiffusionTrainer, build_denoiser, sample_images
    torch.manual_seed(0)
    model = build_denoiser(cfg, args.size, args.channels, None)
    tr = DiffusionTrainer(model, ds, cfg, device=dev, seed=0)
    tr.train(args.warmup)
    sync(dev); t0 = time.perf_counter()
    tr.train(args.warmup + args.steps)
    sync(dev); dt = time.perf_counter() - t0
    train = dict(images_per_second=args.steps * args.batch / dt, seconds=dt)
    sm = tr.sampling_model(); del tr
    shape = (args.channels, args.size, args.size)
    sample_images(sm, cfg, args.sample_batch, shape, seed=1)      # warm-up at the same shape (kernels, autotuning)
    sync(dev); t0 = time.perf_counter()
    imgs = sample_images(sm, cfg, args.sample_batch, shape, seed=0)
    sync(dev); ds_ = time.perf_counter() - t0
    assert imgs.shape == (args.sample_batch, *shape) and imgs.dtype == np.uint8
    return train, dict(images_per_second=args.sample_batch / ds_, seconds=ds_)


def main(argv=None):
    args = parse(argv)
    from medimb.core import get_device
    from medimb.data import phantom
    from medimb.ddpm import ddpm_config, unet_config
    dev = get_device(args.device)
    if args.threads: torch.set_num_threads(args.threads)
    for k in ('steps', 'batch', 'plain_batch', 'n_images', 'sample_batch'):
        if getattr(args, k) < 1: sys.exit(f'--{k.replace("_", "-")} must be at least 1')
    ds = phantom(max(args.n_images, args.plain_batch), args.size, ratio=0.2, seed=0, channels=args.channels)
    over = dict(width=args.width, batch_size=args.batch, compile=args.compile, bf16=not args.no_bf16, warmup_steps=0,
                log_every=max(1, min(50, args.steps)), checkpoint_every=10 ** 9, sample_batch=args.sample_batch)
    if args.sample_steps: over['sample_steps'] = args.sample_steps
    cfg = ddpm_config('default', **over)
    unet_kwargs = unet_config(cfg, args.size, args.channels, None)
    plain = plain_loop(ds, cfg, unet_kwargs, args, dev)
    if dev.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    train, sample = medimb_loop(ds, cfg, args, dev)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or platform.machine()
    prec = 'fp32' if args.no_bf16 or dev.type != 'cuda' else 'bf16 autocast'
    layout = ' + channels_last' if dev.type == 'cuda' else ''
    print(f"\n**DDPM speed** on {dev} ({name}), torch {torch.__version__}: UNet2DModel {unet_kwargs['block_out_channels']} "
          f"({plain['params'] / 1e6:.1f}M parameters), {args.size} px, {args.channels} channel(s); {args.steps} timed steps after {args.warmup} warm-up.\n")
    rows = [('plain fp32 loop (PIL DataLoader, EMAModel, per-step loss.item())', args.plain_batch, 'fp32', 'no', plain['images_per_second'], 1.0),
            ('medimb DiffusionTrainer (device-resident uint8, fused AdamW, foreach EMA)', args.batch, prec + layout,
             'yes' if args.compile else 'no', train['images_per_second'], train['images_per_second'] / plain['images_per_second'])]
    print('| training loop | batch | precision | compile | images/s | × plain |')
    print('|---|---|---|---|---|---|')
    for r in rows: print(f'| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} | {r[5]:.2f} |')
    print(f"\n| sampling | images | sampler | steps | images/s |\n|---|---|---|---|---|\n"
          f"| medimb sample_images (EMA weights, {prec}) | {args.sample_batch} | {cfg.sampler} | {cfg.sample_steps} | {sample['images_per_second']:.2f} |")
    if dev.type == 'cuda': print(f'\npeak GPU memory of the medimb run: {peak:.1f} GiB')
    out = dict(device=str(dev), device_name=name, torch=torch.__version__, size=args.size, channels=args.channels, width=args.width,
               params=plain['params'], plain=dict(batch=args.plain_batch, **plain), medimb=dict(batch=args.batch, compile=args.compile, precision=prec, **train),
               speedup=train['images_per_second'] / plain['images_per_second'],
               sampling=dict(sampler=cfg.sampler, steps=cfg.sample_steps, batch=args.sample_batch, **sample), peak_gib=peak)
    if args.out: Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == '__main__':
    main()
