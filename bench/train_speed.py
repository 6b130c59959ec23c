"""ResNet18 training throughput at 224 px: the pneumonia study's pipeline vs medimb's engine, in one run on one device.

(a) conventional: PNG files decoded with PIL in DataLoader workers, torchvision transforms (resize, rotation,
    flip, to-tensor, normalize) per image, fp32, batch 32 (as the pneumonia study trained);
(b) medimb: the whole uint8 set held on the device, BatchAugment on whole batches, bf16 autocast, channels_last,
    `medimb.train.fit` at batch 256 (optionally torch.compile).

    python bench/train_speed.py --device cuda                  # the benchmark (one H100: see BENCHMARKS.md)
    python bench/train_speed.py --device cpu --size 64 --n 256 --steps 4 --workers 2   # a smoke run on CPU
"""
import argparse, os, platform, tempfile, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F

def conventional(folder, files, labels, args, dev):
    from PIL import Image
    import torchvision
    from torchvision import transforms as T
    tf = T.Compose([T.Resize((args.size, args.size)), T.RandomRotation(10), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    class Files(torch.utils.data.Dataset):
        def __len__(self): return len(files)
        def __getitem__(self, i): return tf(Image.open(files[i]).convert('RGB')), int(labels[i])
    dl = torch.utils.data.DataLoader(Files(), batch_size=32, shuffle=True, num_workers=args.workers, pin_memory=dev.type == 'cuda',
                                     drop_last=True, persistent_workers=args.workers > 0)
    model = torchvision.models.resnet18(num_classes=2).to(dev)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    def epoch(max_steps):
        seen, t0 = 0, None
        for step, (x, y) in enumerate(dl):
            if step == args.warmup: 
                if dev.type == 'cuda': torch.cuda.synchronize()
                t0, seen = time.perf_counter(), 0
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
            seen += len(y)
            if step + 1 >= max_steps: break
        if dev.type == 'cuda': torch.cuda.synchronize()
        return seen / (time.perf_counter() - t0)
    return epoch(args.warmup + args.steps_conv)

def medimb_engine(ds, args, dev):
    from medimb.models import get_model
    from medimb.train import fit
    from medimb.data import BatchAugment
    n = args.batch * (args.steps + 1)
    idx = np.random.default_rng(0).choice(len(ds), n, replace=n > len(ds))
    train = ds[idx]
    model = get_model('resnet18', in_channels=1)
    h = fit(model, train, None, epochs=2, batch_size=args.batch, device=str(dev), augment=BatchAugment(flip=0.5, rotate=10),
            compile=args.compile, progress=False, schedule=None)
    return h.rows[-1]['images_per_second']   # the second epoch: warm (compiled, cudnn tuned)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda'); ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--n', type=int, default=2048, help='images written to disk for the conventional pipeline')
    ap.add_argument('--batch', type=int, default=256); ap.add_argument('--steps', type=int, default=20, help='measured steps (medimb)')
    ap.add_argument('--steps-conv', type=int, default=60, help='measured steps (conventional, batch 32)')
    ap.add_argument('--warmup', type=int, default=5); ap.add_argument('--workers', type=int, default=16)
    ap.add_argument('--compile', action='store_true')
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    from medimb.data import phantom
    ds = phantom(args.n, args.size, ratio=0.26, finding='pneumonia', seed=0)
    from PIL import Image
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i, img in enumerate(ds.images[:, 0]):
            f = Path(d) / f'{i:05d}.png'; Image.fromarray(img).save(f); files.append(f)
        args.steps_conv = min(args.steps_conv, len(files) // 32 - args.warmup)
        conv = conventional(d, files, ds.labels, args, dev)
    ours = medimb_engine(ds, args, dev)
    gpu = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or platform.machine()
    print(f"\n| pipeline | batch | precision | images/s |\n|---|---|---|---|")
    print(f"| conventional (PIL + torchvision transforms + DataLoader, {args.workers} workers) | 32 | fp32 | {conv:,.0f} |")
    print(f"| medimb fit (device-resident uint8, BatchAugment{', compile' if args.compile else ''}) | {args.batch} | "
          f"{'bf16, channels_last' if dev.type == 'cuda' else 'fp32'} | {ours:,.0f} |")
    print(f"\nspeed-up {ours / conv:.1f}x on {gpu}, {args.size} px, torch {torch.__version__}, {os.cpu_count()} CPU cores")

if __name__ == '__main__':
    main()
