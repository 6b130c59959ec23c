"""The published architectures, run on CPU at small sizes through medimb's own paths, with random weights (no download):
seconds and peak memory of each step, then an estimate of GPU memory for each study setting (T4 and H100).

- Stable Diffusion 1.5 (UNet 860M, VAE 84M, CLIP ViT-L/14 text encoder 123M; `medimb.pipelines.published_components`, which
  holds the published configs): one LoRA fine-tuning step of `medimb.sd15.StableDiffusionTrainer` (at 64, 128 and 256 px,
  without and with gradient checkpointing), and one image-to-image step of `StableDiffusionBalancer.img2img` (model 'random-weights');
- InstructPix2Pix (the same UNet with 8 input channels): one edit step of `medimb.diffusemix.edit_images` on
  `load_pipeline('random-weights', 'instruct-pix2pix')`;
- LeNet (128 px), ResNet18 (224 px), DenseNet121 (224 px), Inception-V3 (299 px): one training step each through `medimb.train.fit`.

Each group runs in its own process (`--group`), so one group's memory never counts in another's. Memory is the process's resident
set (RSS): `psutil` sampled every 2 ms by a thread while a phase runs, raised to `resource.getrusage`'s lifetime peak
(ru_maxrss) when the phase set a new one; "rise" is that peak minus the RSS just before the phase. glibc is told to give large
blocks back to the system at once (MALLOC_MMAP_THRESHOLD_), so memory freed by one phase does not hide the next one's. With --device cuda each row also
records torch.cuda.max_memory_allocated (and the estimates, which scale the CPU rows, are not made).

    nice python bench/architectures.py                      # every group, one thread: about 20 minutes, 11 GiB of memory at most
    python bench/architectures.py --device cuda --sizes 256,512 --batches 4,8 --classifier-batch 32   # a GPU: the study settings measured
    python bench/architectures.py --groups resnet18,lenet   # some groups
    python bench/architectures.py --estimate-only           # the GPU estimates again from the saved measurements

Writes measurements.{json,csv,md} and estimates.{json,md} under --out (default _runs/architectures).
"""
import argparse, gc, itertools, json, os, platform, resource, subprocess, sys, threading, time
from datetime import datetime, timezone
from pathlib import Path

GiB = 2 ** 30
GROUPS = ('sd15-lora', 'sd15-img2img', 'instruct-pix2pix', 'lenet', 'resnet18', 'densenet121', 'inception_v3')
CLASSIFIERS = dict(lenet=128, resnet18=224, densenet121=224, inception_v3=299)   # the side each study used
SETTINGS = json.loads(os.environ.get('BENCH_SETTINGS', '{}')) or dict(device='cpu', sizes=[64, 128, 256], batches=[2], classifier_batch=8)

# ---------------------------------------------------------------------------------------------------------------- measuring
def rss()->int:
    "The process's resident memory in bytes: psutil, or /proc/self/statm (what psutil reads on Linux) where psutil is missing."
    try: import psutil
    except ImportError: return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    return psutil.Process().memory_info().rss

def max_rss()->int:
    "The process's lifetime peak RSS in bytes (Linux reports kilobytes)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def on_gpu()->bool: return SETTINGS['device'].startswith('cuda')

def sync():
    import torch
    if on_gpu(): torch.cuda.synchronize()

class Phase:
    """Seconds and peak RSS of a block: a thread samples RSS every 2 ms; ru_maxrss counts when the block set a new lifetime peak.
    On a GPU, also the peak of PyTorch's allocated device memory (torch.cuda.max_memory_allocated) and its rise."""
    def __init__(self, rows:list, group:str, phase:str, **info):
        self.rows, self.row = rows, dict(group=group, phase=phase, **info)
    def _watch(self):
        while not self._stop.wait(0.002): self.peak = max(self.peak, rss())
    def __enter__(self):
        gc.collect(); self.before = self.peak = rss(); self.max_before = max_rss()
        if on_gpu():
            import torch
            sync(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(); self.gpu_before = torch.cuda.memory_allocated()
        self._stop = threading.Event(); self._thread = threading.Thread(target=self._watch, daemon=True); self._thread.start()
        self.t0 = time.perf_counter(); return self
    def __exit__(self, *exc):
        sync(); seconds = time.perf_counter() - self.t0
        self._stop.set(); self._thread.join()
        peak = max(self.peak, rss()); after_max = max_rss()
        if after_max > self.max_before: peak = max(peak, after_max)
        self.row.update(seconds=round(seconds, 2), rss_before_gib=round(self.before / GiB, 3), peak_gib=round(peak / GiB, 3),
                        rise_gib=round((peak - self.before) / GiB, 3))
        if on_gpu():
            import torch
            gpu = torch.cuda.max_memory_allocated()
            self.row.update(gpu_before_gib=round(self.gpu_before / GiB, 3), gpu_peak_gib=round(gpu / GiB, 3), gpu_rise_gib=round((gpu - self.gpu_before) / GiB, 3),
                            gpu_reserved_gib=round(torch.cuda.max_memory_reserved() / GiB, 3))
        if exc[0] is None:
            self.rows.append(self.row)
            gpu = f"   GPU peak {self.row['gpu_peak_gib']:6.2f} GiB" if on_gpu() else ''
            print(f"  {self.row['group']:>16} {self.row['phase']:<30} {seconds:8.1f} s   peak {peak / GiB:6.2f} GiB   rise {(peak - self.before) / GiB:6.2f} GiB{gpu}", flush=True)

def count(m, trainable=False)->int: return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable)

# ---------------------------------------------------------------------------------------------------------------- the groups
def run_sd15_lora(rows):
    "StableDiffusionTrainer, LoRA (rank 4 on the attention projections): one step at each size and batch, without and with gradient checkpointing."
    dev = SETTINGS['device']
    import copy, torch
    from medimb.data import phantom
    from medimb.pipelines import RANDOM_WEIGHTS
    from medimb.sd15 import FineTuneConfig, StableDiffusionTrainer, class_prompts, load_components
    with Phase(rows, 'sd15-lora', 'build (published, random)') as ph:
        parts = load_components(RANDOM_WEIGHTS, dev)
    ph.row.update(parameters=count(parts.unet) + count(parts.vae) + count(parts.text_encoder))
    for checkpointing, resolution, batch in itertools.product((False, True), SETTINGS['sizes'], SETTINGS['batches']):
        data = phantom(max(16, batch), resolution, ratio=0.5, seed=0)   # 16 images: the VAE encodes them in one batch of 16 (encode_images' default)
        cfg = FineTuneConfig(finetune='lora', resolution=resolution, batch_size=batch, max_steps=1, gradient_checkpointing=checkpointing)   # precision 'auto'
        tag = f"{resolution} px{'' if len(SETTINGS['batches']) == 1 else f' batch {batch}'}{' checkpointing' if checkpointing else ''}"
        info = dict(resolution=resolution, batch=batch, checkpointing=checkpointing)
        with Phase(rows, 'sd15-lora', f'setup {tag}', **info, images=len(data)) as ph:   # a copy of the UNet, LoRA adapters, the VAE encodes 16 images
            tr = StableDiffusionTrainer(parts, data, class_prompts(data.classes), cfg, unet=copy.deepcopy(parts.unet), device=dev, seed=0)
        ph.row.update(parameters=count(tr.part.unet), trainable=count(tr.part, True))
        with Phase(rows, 'sd15-lora', f'step {tag}', **info) as ph:
            tr.train(steps=1)
        ph.row.update(parameters=count(tr.part.unet), trainable=count(tr.part, True), loss=float(tr.history[-1]['loss']) if tr.history else None)
        del tr; gc.collect()
        if on_gpu(): torch.cuda.empty_cache()

def run_sd15_img2img(rows):
    "StableDiffusionBalancer with the base model (no fine-tuning): one img2img denoising step (strength 1, guidance 7.5) of a batch."
    dev = SETTINGS['device']
    import numpy as np
    from medimb.data import phantom
    from medimb.pipelines import RANDOM_WEIGHTS
    from medimb.sd15 import StableDiffusionBalancer
    batch = max(SETTINGS['batches'])
    for resolution in SETTINGS['sizes']:
        data = phantom(max(8, 2 * batch), resolution, ratio=0.5, seed=0)
        b = StableDiffusionBalancer(model=RANDOM_WEIGHTS, finetune=None, resolution=resolution, steps=1, strength=1.0, sample_batch=batch,
                                    random_state=0, device=dev, cache=False, progress=False)
        with Phase(rows, 'sd15-img2img', f'build and fit {resolution} px') as ph:   # load_components('random-weights'); finetune=None trains nothing
            b.fit_generator(data, labels=[1])
        c = b.components_
        ph.row.update(parameters=count(c.unet) + count(c.vae) + count(c.text_encoder))
        with Phase(rows, 'sd15-img2img', f'img2img {resolution} px', resolution=resolution, batch=batch, parameters=ph.row['parameters']) as ph:
            out = b.img2img(data.images[:batch], 1, seed=0)
        assert out.shape == (batch, *data.images.shape[1:]) and out.dtype == np.uint8
        del b, c, out; gc.collect()

def run_instruct_pix2pix(rows):
    "DiffuseMix's edit: edit_images on the published InstructPix2Pix architecture (weights in load_pipeline's 'auto' dtype), one Euler ancestral step of a batch."
    dev = SETTINGS['device']
    import numpy as np
    from medimb.data import phantom
    from medimb.pipelines import RANDOM_WEIGHTS, load_pipeline
    from medimb.diffusemix import edit_images, prompt_list
    with Phase(rows, 'instruct-pix2pix', 'build (published, random)') as ph:
        pipe = load_pipeline(RANDOM_WEIGHTS, 'instruct-pix2pix', device=dev, scheduler='euler_ancestral')
    n = count(pipe.unet) + count(pipe.vae) + count(pipe.text_encoder)
    ph.row.update(parameters=n, unet_in_channels=pipe.unet.config.in_channels)
    batch = max(SETTINGS['batches']); words = list(prompt_list('hernia_study'))
    prompts = [words[i % len(words)] for i in range(batch)]
    for resolution in SETTINGS['sizes']:
        x = phantom(batch, resolution, ratio=0.5, seed=0).images
        with Phase(rows, 'instruct-pix2pix', f'edit {resolution} px', resolution=resolution, batch=batch, parameters=n):
            out = edit_images(pipe, x, prompts, steps=1, batch_size=batch)
        assert out.shape == x.shape and out.dtype == np.uint8

def run_classifier(rows, name):
    "One training step (one epoch of one batch) of medimb's fit: AdamW, fp32 on CPU (bf16/fp16 autocast on a GPU); it includes fit's one-image output check."
    dev = SETTINGS['device']
    from medimb.data import phantom
    from medimb.models import get_model
    from medimb.train import fit
    side, batch = CLASSIFIERS[name], SETTINGS['classifier_batch']
    data = phantom(batch, side, ratio=0.5, seed=0)
    with Phase(rows, name, 'build') as ph:
        model = get_model(name, num_classes=2, in_channels=1, **({'size': side} if name == 'lenet' else {}))
    n = count(model); ph.row.update(parameters=n)
    with Phase(rows, name, f'step {side} px', resolution=side, batch=batch, parameters=n, trainable=count(model, True)):
        fit(model, data, epochs=1, batch_size=batch, schedule=None, device=dev, progress=False)

def run_group(group:str)->list:
    import torch
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', '1')))
    from diffusers.utils import logging as diffusers_logging
    diffusers_logging.set_verbosity_error()
    rows = []
    if group == 'sd15-lora': run_sd15_lora(rows)
    elif group == 'sd15-img2img': run_sd15_img2img(rows)
    elif group == 'instruct-pix2pix': run_instruct_pix2pix(rows)
    else: run_classifier(rows, group)
    return rows

# ---------------------------------------------------------------------------------------------------------------- GPU estimates
# Parameter counts of the published parts (asserted by tests/test_architectures.py on the meta device).
UNET, UNET_IP2P, VAE, TEXT = 859_520_964, 859_532_484, 83_653_863, 123_060_480
CONTEXT = 0.5          # GiB: the CUDA context and library workspaces (an allowance, not measured)
USABLE = {'T4 (16 GB, fp16)': 15.0, 'H100 (80 GB, bf16)': 79.6}   # GiB the card reports (15,360 MiB and 81,559 MiB)

def largest(rows, group, phase_at)->dict:
    "The measured row of `group` whose phase is `phase_at(its resolution)`, at the largest resolution measured."
    found = [r for r in rows if r['group'] == group and r.get('resolution') and r['phase'] == phase_at(r['resolution'])]
    if not found: raise KeyError(f"no {group} row like {phase_at(64)!r}: measure that group first")
    return max(found, key=lambda r: r['resolution'])

def scaled(rows, group, phase_at, side, batch)->float:
    """Activations (GiB, as measured: fp32) at `side` and `batch`: the CPU rise at the largest measured size × (side ratio)² × (batch ratio).
    Proportional to the pixels, as the attention of diffusers on a GPU (PyTorch's SDPA kernels) is; the largest measured size is
    the base, because at 64 px a fixed part (first-call buffers) is a large share of the rise (the smaller sizes show the growth)."""
    r = largest(rows, group, phase_at)
    return r['rise_gib'] * (side / r['resolution']) ** 2 * (batch / r['batch'])

def estimates(rows)->list:
    """GPU memory of each study setting (GiB): what medimb keeps on the device (from the parameter counts) plus activations scaled from
    the CPU rise by pixels and batch. Activations under autocast are given as a range: halved (fp16/bf16, the low end) and as measured
    in fp32 (the high end; group and layer norms stay fp32 under autocast, so the truth lies between); with half weights (the DiffuseMix
    edit) they are halved at both ends. T4 (fp16) and H100 (bf16) hold 2-byte halves alike, so the estimate is the same on both;
    only what fits differs. Estimates, not measurements."""
    out = []
    def add(study, setting, fixed, peaks, note):
        "peaks: (moment, GiB above `fixed`, how it is held: 'exact', 'autocast' or 'half') for each moment that may be the peak."
        low = {m: a / 2 if how in ('autocast', 'half') else a for m, a, how in peaks}
        high = {m: a / 2 if how == 'half' else a for m, a, how in peaks}
        at, first = max(high, key=high.get), peaks[0][0]
        lo, hi = fixed + max(low.values()) + CONTEXT, fixed + high[at] + CONTEXT
        alone = f"{fixed + low[first] + CONTEXT:.1f} – {fixed + high[first] + CONTEXT:.1f}"
        fits = {card: ('yes' if hi <= cap else 'borderline' if lo <= cap else 'no') for card, cap in USABLE.items()}
        out.append(dict(study=study, setting=setting, held_gib=round(fixed, 2), estimate_gib=f'{lo:.1f} – {hi:.1f}', peak_at=at, step_alone_gib=alone, low_gib=round(lo, 2),
                        high_gib=round(hi, 2), **fits, note=note))
    w32 = lambda n: 4 * n / GiB; w16 = lambda n: 2 * n / GiB
    # classifiers: fp32 weights, gradients and AdamW's two moments (16 bytes a parameter) + the uint8 training set held on the device;
    # activations: the step's rise less the gradients and moments it made (12 bytes a parameter), × (side ratio)² × (batch ratio)
    cls = {r['group']: r for r in rows if r['group'] in CLASSIFIERS and r['phase'].startswith('step')}
    def classifier(study, name, side, batch, n_images):
        r = cls[name]; P = r['parameters']
        act = max(0., r['rise_gib'] - 12 * P / GiB) * (side / r['resolution']) ** 2 * (batch / r['batch'])
        add(study, f"{name} {side} px, batch {batch}", 16 * P / GiB + n_images * side * side / GiB, [('step', act, 'autocast')],
            f"{P / 1e6:.1f}M parameters × 16 B; {n_images:,} uint8 images on the device")
    # training images on the device: hernia 1,192 (1,000 : 192, all splits: an upper bound); Kermany's 5,216 for pneumonia and the
    # latent-diffusion study (pediatric CXR); RSNA_50's 12,007 for the GAN study. Batch 32: the pneumonia study's (the others do not say)
    classifier('hernia', 'lenet', 128, 32, 1_192)
    classifier('pneumonia', 'resnet18', 224, 32, 5_216)
    classifier('latent diffusion (classifier)', 'inception_v3', 299, 32, 5_216)
    classifier('GANs (classifier)', 'densenet121', 224, 32, 12_007)
    # SD 1.5 LoRA: StableDiffusionBalancer keeps the base parts on the device in fp32 (load_components); StableDiffusionTrainer copies
    # the UNet (in fp32, then casts the frozen weights to half), encodes the images with the fp32 VAE 16 at a time, then steps under
    # autocast with LoRA weights, gradients and moments in fp32. The peak is the largest of the fp32 copy, the encoding and the step.
    base = w32(UNET + VAE + TEXT)
    lora = largest(rows, 'sd15-lora', lambda r: f"step {r} px")['trainable']
    for side in (256, 512):
        for batch in (4, 8):
            for ck in (False, True):
                tag = ' checkpointing' if ck else ''
                step = scaled(rows, 'sd15-lora', lambda r: f"step {r} px{tag}", side, batch)
                setup = largest(rows, 'sd15-lora', lambda r: f"setup {r} px{tag}")
                encode = max(0., setup['rise_gib'] - w32(UNET)) * (side / setup['resolution']) ** 2   # the setup's rise less its fp32 UNet copy, 16 images either way
                add('latent diffusion', f"SD 1.5 LoRA {side} px, batch {batch}{', gradient checkpointing' if ck else ''}",
                    base + w16(UNET) + 16 * lora / GiB, [('step', step, 'autocast'), ('VAE encoding', encode, 'exact'), ('fp32 copy', w32(UNET) - w16(UNET), 'exact')],
                    "base parts fp32 + the trained copy in half + LoRA; the peak of the step, the VAE encoding (16 images) and the fp32 copy")
        add('latent diffusion', f"SD 1.5 img2img sampling {side} px, batch 8", base + w16(UNET),
            [('sampling', scaled(rows, 'sd15-img2img', lambda r: f"img2img {r} px", side, 8), 'autocast')],
            "after fine-tuning: base parts fp32 + the trained copy in half; 8 images a call with guidance (the UNet sees 16)")
    for side in (256, 512):
        add('DiffuseMix', f"InstructPix2Pix edit {side} px, batch 8", w16(UNET_IP2P + VAE + TEXT),
            [('edit', scaled(rows, 'instruct-pix2pix', lambda r: f"edit {r} px", side, 8), 'half')],
            "half weights (load_pipeline's 'auto'); 8 images a call, three guidance branches (the UNet sees 24)")
    return out

def markdown(rows, columns)->str:
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for r in rows: lines.append('| ' + ' | '.join('' if r.get(c) is None else f"{r[c]:,}" if isinstance(r.get(c), int) and not isinstance(r.get(c), bool) else str(r[c]) for c in columns) + ' |')
    return '\n'.join(lines) + '\n'

# ---------------------------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--groups', default=','.join(GROUPS)); ap.add_argument('--out', default='_runs/architectures')
    ap.add_argument('--threads', type=int, default=1); ap.add_argument('--group', help=argparse.SUPPRESS)
    ap.add_argument('--estimate-only', action='store_true', help='recompute estimates.md from the saved measurements.json')
    ap.add_argument('--device', default='cpu', help="'cpu' (the measurements the estimates scale), or 'cuda' to measure a GPU's memory directly")
    ap.add_argument('--sizes', default='64,128,256', help='image sides of the Stable Diffusion and InstructPix2Pix rows (a GPU: 256,512)')
    ap.add_argument('--batches', default='2', help='batches of the LoRA rows (the largest also for img2img and the edit; a GPU: 4,8)')
    ap.add_argument('--classifier-batch', type=int, default=8, help='the classifiers\' batch (a GPU: 32)')
    a = ap.parse_args()
    if a.group:   # a child: one group, rows as JSON on the last line of stdout
        print(json.dumps(run_group(a.group))); return
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    saved = out/'measurements.json'
    if a.estimate_only: meta = json.loads(saved.read_text())
    else:
        groups = a.groups.split(',')
        if bad := [g for g in groups if g not in GROUPS]: sys.exit(f"unknown groups {bad}; choose from {list(GROUPS)}")
        settings = dict(device=a.device, sizes=[int(v) for v in a.sizes.split(',')], batches=[int(v) for v in a.batches.split(',')],
                        classifier_batch=a.classifier_batch)
        env = {**os.environ, 'MALLOC_MMAP_THRESHOLD_': '131072', 'BENCH_THREADS': str(a.threads), 'OMP_NUM_THREADS': str(a.threads),
               'BENCH_SETTINGS': json.dumps(settings)}
        meta = dict(settings=settings, date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), machine=f"{platform.machine()}, {os.cpu_count()} cores, "
                    f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GiB:.0f} GiB", threads=a.threads, rows=[])
        if saved.is_file() and json.loads(saved.read_text()).get('settings') == settings:   # the other groups of the same settings stay
            meta['rows'] = [r for r in json.loads(saved.read_text())['rows'] if r['group'] not in groups]
        if a.device != 'cpu':
            import torch
            meta['gpu'] = torch.cuda.get_device_name()
        t0 = time.perf_counter()
        for g in groups:
            print(f"{g}:", flush=True)
            p = subprocess.run([sys.executable, __file__, '--group', g], env=env, capture_output=True, text=True)
            if p.returncode: sys.exit(f"group {g} failed ({p.returncode}):\n{p.stderr[-3000:]}")
            lines = p.stdout.rstrip().splitlines()
            print('\n'.join(lines[:-1]), flush=True)
            meta['rows'] += json.loads(lines[-1])
            saved.write_text(json.dumps(meta, indent=1))
        meta['seconds'] = round(time.perf_counter() - t0); saved.write_text(json.dumps(meta, indent=1))
    rows = meta['rows']
    gpu = meta.get('settings', {}).get('device', 'cpu') != 'cpu'
    cols = ['group', 'phase', 'parameters', 'trainable', 'resolution', 'batch', 'seconds', 'rss_before_gib', 'peak_gib', 'rise_gib']
    if gpu: cols += ['gpu_before_gib', 'gpu_peak_gib', 'gpu_rise_gib', 'gpu_reserved_gib']
    import csv
    with open(out/'measurements.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, cols, extrasaction='ignore'); w.writeheader(); w.writerows(rows)
    head = (f"{meta['date']}; {meta['machine']}; {meta['threads']} thread(s); " + (f"{meta.get('gpu')}; torch.cuda.max_memory_allocated" if gpu else
            "CPU, fp32") + "; RSS via psutil (sampled) and ru_maxrss\n\n")
    (out/'measurements.md').write_text(head + markdown(rows, cols)); print(head + markdown(rows, cols))
    if not gpu and all(any(r['group'] == g for r in rows) for g in GROUPS):
        est = estimates(rows); ecols = ['study', 'setting', 'held_gib', 'estimate_gib', 'peak_at', 'step_alone_gib', *USABLE]
        (out/'estimates.md').write_text(markdown(est, ecols)); print(markdown(est, ecols))
        (out/'estimates.json').write_text(json.dumps(est, indent=1))
    elif not gpu: print('(estimates need every group measured)')

if __name__ == '__main__': main()
