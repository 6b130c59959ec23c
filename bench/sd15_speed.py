"""Stable Diffusion fine-tuning and generation throughput, side by side in one run on one device.

Fine-tuning images/s, LoRA and the full UNet, at the same resolution, batch, precision and steps:
- plain: a loop written the way diffusers' `train_text_to_image_lora.py` works: every step encodes the batch with the VAE and the
  prompts with the text encoder, the frozen parts held in half precision, the UNet under autocast, backward, clipping, AdamW;
- medimb: `StableDiffusionTrainer` on the one TrainLoop (latents and prompt embeddings computed once, before the steps; the
  one-off encoding time is reported beside it).
Generation images/s of the fine-tuned model (text-to-image and image-to-image at `--strength`): one image per pipeline call with
half-precision weights (the usual script) against medimb's batched calls under autocast.

    python bench/sd15_speed.py --model stable-diffusion-v1-5/stable-diffusion-v1-5     # a GPU, 512 px
    python bench/sd15_speed.py --tiny                                                  # CPU smoke test with the tiny untrained model
"""
import argparse, copy, json, time
import numpy as np, torch
import torch.nn.functional as F
from medimb.data import phantom
from diffusers.utils import logging as diffusers_logging
diffusers_logging.set_verbosity_error()   # its notes on casting the tiny parts are noise here
from medimb.pipelines import STABLE_DIFFUSION, TINY, to_model_input, from_model_output
from medimb.train import resolve_precision
from medimb.sd15 import (FineTuneConfig, StableDiffusionTrainer, class_prompts, encode_prompts, load_components, prepare_unet)

HALF = {'bf16': torch.bfloat16, 'fp16': torch.float16}

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

def plain_loop(parts, images, labels, prompts, cfg, dev, steps, warmup):
    "Images/s of a diffusers-example-style loop: VAE and text encoder every step, frozen parts in half precision, UNet under autocast."
    precision = resolve_precision(cfg.precision, dev)
    half = HALF.get(precision, torch.float32)
    vae, text_encoder = copy.deepcopy(parts.vae).to(dev, half), copy.deepcopy(parts.text_encoder).to(dev, half)
    unet = prepare_unet(copy.deepcopy(parts.unet), cfg, seed=0).to(dev)
    if cfg.finetune == 'lora' and half != torch.float32:   # the example: frozen UNet in the weight dtype, the adapters back in fp32
        trained = [p for p in unet.parameters() if p.requires_grad]; unet.to(half)
        for p in trained: p.data = p.data.float()
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler('cuda') if precision == 'fp16' else None
    sched = parts.noise_scheduler(); T = sched.config.num_train_timesteps
    tok = parts.tokenizer; sf = vae.config.scaling_factor
    ids = tok(prompts, padding='max_length', max_length=tok.model_max_length, truncation=True, return_tensors='pt').input_ids
    g = torch.Generator().manual_seed(0); b = cfg.batch_size
    def step():
        idx = torch.randint(0, len(images), (b,), generator=g)
        x = to_model_input(images[idx.numpy()], cfg.resolution, dev) * 2 - 1
        with torch.no_grad():
            latents = vae.encode(x.to(half)).latent_dist.sample() * sf
            text = text_encoder(ids[labels[idx.numpy()]].to(dev))[0]
        noise = torch.randn_like(latents); t = torch.randint(0, T, (b,), device=dev)
        noisy = sched.add_noise(latents.float(), noise.float(), t)
        target = noise.float() if parts.prediction_type == 'epsilon' else sched.get_velocity(latents.float(), noise.float(), t)
        with torch.autocast(dev.type, dtype=half, enabled=half != torch.float32):
            pred = unet(noisy, t, text).sample
        loss = F.mse_loss(pred.float(), target)
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler: scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        (scaler.step(opt), scaler.update()) if scaler else opt.step()
        opt.zero_grad(set_to_none=True)
    unet.train()
    for _ in range(warmup): step()
    sync(dev); t0 = time.perf_counter()
    for _ in range(steps): step()
    sync(dev)
    return steps * b / (time.perf_counter() - t0), unet

def medimb_loop(parts, data, prompts, cfg, dev, steps, warmup):
    "Images/s of StableDiffusionTrainer's steps, and the seconds its one-off encoding took."
    sync(dev); t0 = time.perf_counter()
    tr = StableDiffusionTrainer(parts, data, prompts, cfg, unet=copy.deepcopy(parts.unet), device=dev, seed=0)
    sync(dev); setup = time.perf_counter() - t0
    tr.train(steps=warmup); sync(dev); t0 = time.perf_counter()
    tr.train(steps=warmup + steps); sync(dev)
    return steps * cfg.batch_size / (time.perf_counter() - t0), setup, tr.trained_unet()

def generation(parts, unet, images, prompt, resolution, n, batch, steps, strength, dev, precision, batched):
    "Images/s of text-to-image and image-to-image: one image per call in half weights (plain) or `batch` per call under autocast (medimb)."
    half = HALF.get(precision, torch.float32)
    rates = {}
    for kind in ('text2img', 'img2img'):
        if batched: pipe, ctx = parts.pipeline(kind, unet, 'dpm'), (lambda: torch.autocast(dev.type, dtype=half, enabled=half != torch.float32))
        else:
            pipe = parts.pipeline(kind, copy.deepcopy(unet), 'dpm'); pipe.vae, pipe.text_encoder = copy.deepcopy(parts.vae), copy.deepcopy(parts.text_encoder)
            pipe.to(dev, half); ctx = torch.no_grad
        per_call = batch if batched else 1
        def run(m):
            out = []
            for i in range(0, m, per_call):
                k = min(per_call, m - i); gens = [torch.Generator().manual_seed(j) for j in range(i, i + k)]
                kw = dict(num_inference_steps=steps, guidance_scale=7.5, output_type='pt', generator=gens)
                with torch.no_grad(), ctx():
                    y = (pipe([prompt] * k, height=resolution, width=resolution, **kw) if kind == 'text2img' else
                         pipe([prompt] * k, image=to_model_input(images[i:i + k], resolution, dev), strength=strength, **kw)).images
                out.append(from_model_output(y, images.shape[1:]))
            return out
        run(min(per_call, 2)); sync(dev); t0 = time.perf_counter()
        run(n); sync(dev)
        rates[kind] = n / (time.perf_counter() - t0)
    return rates

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default=STABLE_DIFFUSION); ap.add_argument('--resolution', type=int, default=512)
    ap.add_argument('--batch', type=int, default=4); ap.add_argument('--steps', type=int, default=20); ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--modes', default='lora,full'); ap.add_argument('--gradient-checkpointing', action='store_true')
    ap.add_argument('--precision', default='auto'); ap.add_argument('--gen-n', type=int, default=16); ap.add_argument('--gen-batch', type=int, default=8)
    ap.add_argument('--gen-steps', type=int, default=30); ap.add_argument('--strength', type=float, default=0.8)
    ap.add_argument('--tiny', action='store_true', help='the tiny untrained model on CPU, at toy sizes (says nothing about GPU speed)')
    ap.add_argument('--out', default=None, help='write the figures as JSON here')
    a = ap.parse_args()
    dev = torch.device('cuda' if torch.cuda.is_available() and not a.tiny else 'cpu')
    if a.tiny: a.model, a.resolution, a.batch, a.steps, a.warmup, a.gen_n, a.gen_batch, a.gen_steps = TINY, 32, 4, 4, 1, 4, 4, 2; torch.set_num_threads(1)
    parts = load_components(a.model, dev, size=a.resolution)
    data = phantom(64 if not a.tiny else 16, min(a.resolution, 256), ratio=0.5, finding='pneumonia', seed=0)
    prompts = class_prompts(data.classes)
    precision = resolve_precision(a.precision, dev)
    name = torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'
    print(f"device {name}; {a.model} at {a.resolution} px; batch {a.batch}; {a.steps} timed steps after {a.warmup}; precision {precision}"
          f"{'; gradient checkpointing' if a.gradient_checkpointing else ''}{'; TINY: a smoke test, not a speed figure' if a.tiny else ''}")
    rows = []
    print('| fine-tuning | plain loop (VAE + text encoder every step) | medimb trainer | speed-up | medimb one-off encoding |')
    for mode in a.modes.split(','):
        cfg = FineTuneConfig(finetune=mode, resolution=a.resolution, batch_size=a.batch, precision=a.precision, gradient_checkpointing=a.gradient_checkpointing)
        plain_rate, _ = plain_loop(parts, data.images, data.labels, prompts, cfg, dev, a.steps, a.warmup)
        if dev.type == 'cuda': torch.cuda.empty_cache()
        ours, setup, unet = medimb_loop(parts, data, prompts, cfg, dev, a.steps, a.warmup)
        print(f"| {mode} | {plain_rate:.2f} images/s | {ours:.2f} images/s | {ours / plain_rate:.2f}× | {setup:.1f} s for {len(data)} images |")
        gen_plain = generation(parts, unet, data.images, prompts[1], a.resolution, a.gen_n, a.gen_batch, a.gen_steps, a.strength, dev, precision, False)
        gen_ours = generation(parts, unet, data.images, prompts[1], a.resolution, a.gen_n, a.gen_batch, a.gen_steps, a.strength, dev, precision, True)
        rows.append(dict(finetune=mode, train_plain=plain_rate, train_medimb=ours, encode_seconds=setup,
                         **{f'{k}_plain': v for k, v in gen_plain.items()}, **{f'{k}_medimb': v for k, v in gen_ours.items()}))
        del unet
        if dev.type == 'cuda': torch.cuda.empty_cache()
    print(f"| generation ({a.gen_steps} steps, img2img strength {a.strength}) | plain (1 image per call, half weights) | medimb (batch {a.gen_batch}, autocast) | speed-up |")
    for r in rows:
        for kind in ('text2img', 'img2img'):
            p, m = r[f'{kind}_plain'], r[f'{kind}_medimb']
            print(f"| {r['finetune']} {kind} | {p:.2f} images/s | {m:.2f} images/s | {m / p:.2f}× |")
    if a.out:
        with open(a.out, 'w') as f: json.dump(dict(device=name, model=a.model, resolution=a.resolution, batch=a.batch, precision=precision, rows=rows), f, indent=1)

if __name__ == '__main__': main()
