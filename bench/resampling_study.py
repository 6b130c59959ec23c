"""The pneumonia study's resampling section at full scale (nbs/08_resampling.ipynb through papermill), and the
pixel-space balancers at the study's scale (5,216 images at 224 px): peak memory and time.

    python bench/resampling_study.py --device cuda          # Kermany (hf-vision/chest-xray-pneumonia), ResNet18 at 224 px, 5 seeds
    python bench/resampling_study.py --device cuda --pretrained   # the same from ImageNet weights (in the torch hub cache offline)
    python bench/resampling_study.py --device cpu --dataset pneumoniamnist.npz --size 28 --model small_cnn --minority-fraction 0.16
    python bench/resampling_study.py --device cpu --dataset phantom-pneumonia --model small_cnn --size 32 --n 400 \\
        --epochs 2 --seeds 0 1 --scale-methods smote        # a smoke run on CPU

The scale check runs each pixel balancer in a fresh process on a phantom with Kermany's training counts
(1,341 normal, 3,875 pneumonia) at 224 px and reports the process's peak resident memory: the study's SMOTE had
to fit in 24 GiB. Everything is written under --out (default _runs/resampling_study/): the executed notebook, the
results folder (tables, figures, findings) and timings.json; a Markdown summary is printed for BENCHMARKS.md.
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERMANY = dict(normal=1341, pneumonia=3875)   # Kermany's training split


def _status(key: str) -> float:
    "A memory figure of this process from /proc/self/status, in GiB (Linux)."
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key + ':'): return int(line.split()[1]) / 2**20
    return float('nan')


def _reset_peak_rss() -> float:
    "Reset the process's peak resident memory (Linux: clear_refs 5) and return the current resident memory in GiB."
    try: Path('/proc/self/clear_refs').write_text('5')
    except OSError: pass
    return _status('VmRSS')


def scale_check(method: str, size: int, device: str, chunk_mb: float) -> dict:
    "Run one pixel balancer on Kermany-sized data in this process; return time, counts and peak memory."
    import numpy as np, torch
    from medimb.data import phantom
    from medimb.resampling import RESAMPLERS
    n = sum(KERMANY.values())
    ds = phantom(n, size, ratio=KERMANY['pneumonia'] / n, finding='pneumonia', seed=0)
    ds = type(ds)(ds.images, ds.labels, ds.classes, ds.patient_ids)        # no masks, like Kermany
    from medimb.resampling import traced_peak
    kw = dict(device=device) | (dict(chunk_mb=chunk_mb) if method not in ('augment', 'imblearn-smote') else {})
    if torch.cuda.is_available(): torch.cuda.reset_peak_memory_stats()
    rss_before = _reset_peak_rss()
    t = time.perf_counter()
    if method == 'imblearn-smote':   # the study's way, for comparison: imbalanced-learn's SMOTE on flattened float32 pixels
        from imblearn.over_sampling import SMOTE
        def study_smote(ds):
            X, y = SMOTE(random_state=0).fit_resample(ds.images.reshape(len(ds), -1).astype(np.float32), ds.labels)
            new = np.clip(np.rint(X[len(ds):]), 0, 255).astype(np.uint8).reshape(-1, *ds.images.shape[1:])
            return ds.add(new, y[len(ds):])
        out, numpy_peak = traced_peak(study_smote, ds)
    else: out, numpy_peak = traced_peak(RESAMPLERS[method](random_state=0, **kw).fit_resample, ds)
    seconds = time.perf_counter() - t
    return dict(method=method, images=n, side=size, seconds=round(seconds, 1), counts_after=out.counts,
                synthetic=int(out.synthetic.sum()), set_uint8_gib=round(ds.images.nbytes / 2**30, 3),
                set_float64_gib=round(ds.images.size * 8 / 2**30, 3), numpy_peak_gib=round(numpy_peak / 2**30, 3),
                rss_before_gib=round(rss_before, 2), peak_rss_gib=round(_status('VmHWM'), 2),
                gpu_peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None)


def run_notebook(args, out: Path) -> dict:
    "Execute the notebook with papermill at the given settings; return the wall time."
    params = dict(dataset=args.dataset, size=args.size, n=args.n, model=args.model, pretrained=args.pretrained, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, seeds=args.seeds, methods=args.methods, head_epochs=args.head_epochs,
                  cam_method=args.cam_method, device=args.device, results_dir=str(out / 'results'),
                  minority_fraction=args.minority_fraction)
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / '08_resampling.ipynb'), str(out / '08_resampling.ipynb'),
           '--cwd', str(ROOT / 'nbs'), '-k', 'python3', '--log-output']
    yaml = json.dumps(params)   # papermill takes a YAML (JSON is YAML) parameter document: lists and booleans keep their types
    t = time.perf_counter()
    subprocess.run(cmd + ['-y', yaml], check=True)
    return dict(params=params, notebook_seconds=round(time.perf_counter() - t, 1))


def summarize_run(out: Path) -> str:
    "A Markdown summary of the study's tables and per-method seconds."
    import pandas as pd
    from medimb.metrics import to_markdown
    d = out / 'results' / '08_resampling'
    parts = []
    for name, title in [('study_table_metrics', 'Balanced accuracy, recall, F1 (mean ± 95% CI over seeds)'), ('counts', 'TP, TN, FP, FN (mean)'),
                        ('summary', 'All test metrics'), ('cam_scores', 'CAM scores'), ('feature_summary', 'Feature space')]:
        if (d / f'{name}.md').exists(): parts.append(f'### {title}\n\n' + (d / f'{name}.md').read_text())
    rows = pd.read_csv(out / 'results' / 'results.csv')
    rows = rows[rows.notebook == '08_resampling']
    t = rows.groupby(['model', 'method'], sort=False)[['balance_seconds', 'train_seconds', 'n_train']].mean().round(2).reset_index()
    parts.append('### Seconds per run (mean over seeds)\n\n' + to_markdown(t))
    return '\n\n'.join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda')
    p.add_argument('--dataset', default='hf-vision/chest-xray-pneumonia')
    p.add_argument('--model', default='resnet18')
    p.add_argument('--pretrained', action='store_true', help='ImageNet weights (they must be in the torch hub cache offline)')
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--minority-fraction', dest='minority_fraction', type=float, default=None,
                   help='real data: subsample the training split so pneumonia is this fraction (validation and test untouched)')
    p.add_argument('--n', type=int, default=5216, help='phantom only: images')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--batch-size', dest='batch_size', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--methods', nargs='+', default=['rus', 'ros', 'smote', 'borderline-smote', 'adasyn', 'smote-tomek', 'augment', 'balanced-sampler'])
    p.add_argument('--head-epochs', dest='head_epochs', type=int, default=50)
    p.add_argument('--cam-method', dest='cam_method', default='smoothgradcampp')
    p.add_argument('--scale-methods', nargs='*', default=None, help="pixel balancers for the scale check, plus 'imblearn-smote' (SMOTE on float32 pixels, "
                   "the study's way); default: all on GPU, 'smote' and 'imblearn-smote' on CPU; give none to skip")
    p.add_argument('--scale-size', type=int, default=224)
    p.add_argument('--chunk-mb', type=float, default=64)
    p.add_argument('--skip-notebook', action='store_true')
    p.add_argument('--out', default=str(ROOT / '_runs' / 'resampling_study'))
    p.add_argument('--scale-only', default=None, help=argparse.SUPPRESS)   # internal: one scale check in this process
    args = p.parse_args()
    if args.scale_only:
        print(json.dumps(scale_check(args.scale_only, args.scale_size, args.device, args.chunk_mb))); return
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    import torch
    info = dict(host=platform.node(), python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads(),
                device=torch.cuda.get_device_name(0) if args.device.startswith('cuda') and torch.cuda.is_available() else platform.processor() or 'cpu')
    scale_methods = args.scale_methods if args.scale_methods is not None else (
        ['smote', 'imblearn-smote', 'borderline-smote', 'adasyn', 'smote-tomek', 'ros', 'rus', 'augment'] if args.device.startswith('cuda') else ['smote', 'imblearn-smote'])
    scale = []
    for m in scale_methods:   # each in a fresh process, so its peak memory is its own
        r = subprocess.run([sys.executable, __file__, '--scale-only', m, '--scale-size', str(args.scale_size), '--device', args.device,
                            '--chunk-mb', str(args.chunk_mb)], capture_output=True, text=True)
        if r.returncode: print(r.stderr[-2000:], file=sys.stderr); raise SystemExit(f'scale check {m} failed')
        scale.append(json.loads(r.stdout.strip().splitlines()[-1])); print('scale check:', scale[-1], flush=True)
    run = {} if args.skip_notebook else run_notebook(args, out)
    (out / 'timings.json').write_text(json.dumps(dict(info=info, scale=scale, run=run), indent=2))
    print(f"\n## Resampling study ({info['device']}, torch {info['torch']}, {info['threads']} threads)\n")
    if scale:
        import pandas as pd
        from medimb.metrics import to_markdown
        print("### Pixel balancers at the study's scale (5,216 images)\n\n" + to_markdown(pd.DataFrame(scale).drop(columns=['counts_after'])) + '\n')
    if run:
        print(f"Notebook: {run['notebook_seconds']} s with {run['params']}\n")
        print(summarize_run(out))


if __name__ == '__main__':
    main()
