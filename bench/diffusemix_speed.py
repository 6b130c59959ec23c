"""DiffuseMix throughput: augmented images per second, the official script's way (one image per InstructPix2Pix call, fp16)
against medimb's `edit_images` (batched, bf16), at the same steps, side by side in one run on one device.

    python bench/diffusemix_speed.py                  # a GPU: timbrooks/instruct-pix2pix at 256 and 512 px
    python bench/diffusemix_speed.py --smoke          # CPU smoke mode (the default without a GPU): the tiny untrained pipeline
"""
import argparse, time
import numpy as np, torch
from medimb.data import phantom
from medimb.pipelines import INSTRUCT_PIX2PIX, load_pipeline, tiny_pipeline, to_pil, from_pil
from medimb.diffusemix import edit_images, hybrid, fractal_blend, round_to_uint8, make_fractals, prompt_list

def finish(x, edited, fractals):
    "The cut, join and fractal blend (the same in both ways; cheap next to the edit)."
    return round_to_uint8(fractal_blend(np.stack([hybrid(o, e) for o, e in zip(x, edited)]), fractals[:1]))

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()

def official(pipe, x, prompts, steps, dev):
    "One PIL image per call, as the official DiffuseMix script does."
    out = []
    for i, im in enumerate(to_pil(x)):
        g = torch.Generator().manual_seed(i)
        out.append(pipe(prompts[i], image=im, num_inference_steps=steps, image_guidance_scale=1.5, guidance_scale=7.5, generator=g).images[0])
    return from_pil(out)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default=INSTRUCT_PIX2PIX); ap.add_argument('--sizes', default='256,512')
    ap.add_argument('--n', type=int, default=32); ap.add_argument('--batch', type=int, default=16); ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--smoke', action='store_true', help='tiny untrained pipeline on CPU (default when there is no GPU)')
    a = ap.parse_args()
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    smoke = a.smoke or dev.type != 'cuda'
    if smoke: a.sizes, a.n, a.batch, a.steps = '32', 8, 8, 2; torch.set_num_threads(1)
    prompts = list(prompt_list('hernia_study'))
    print(f"device {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}; {a.steps} steps; {a.n} images; "
          f"{'tiny untrained pipeline (smoke: says nothing about GPU speed)' if smoke else a.model}")
    print('| size | official (1 image per call, fp16) | medimb (batch %d, bf16) | speed-up |' % a.batch)
    for size in [int(s) for s in a.sizes.split(',')]:
        x = phantom(a.n, size, ratio=0.5, seed=0).images
        words = [prompts[i % len(prompts)] for i in range(a.n)]
        fr = make_fractals(1, size)
        rates = []
        for dtype, batched in (('fp16', False), ('bf16', True)):
            if smoke: pipe = tiny_pipeline(size=size)
            else: pipe = load_pipeline(a.model, device=dev, dtype=dtype, scheduler='euler_ancestral')
            run = (lambda xs, ws: edit_images(pipe, xs, ws, steps=a.steps, batch_size=a.batch)) if batched else (lambda xs, ws: official(pipe, xs, ws, a.steps, dev))
            run(x[:min(2, a.n)], words[:2]); sync(dev)                           # warm-up
            t = time.perf_counter(); finish(x, run(x, words), fr); sync(dev)
            rates.append(a.n / (time.perf_counter() - t))
            del pipe
            if dev.type == 'cuda': torch.cuda.empty_cache()
        print(f"| {size} | {rates[0]:.2f} images/s | {rates[1]:.2f} images/s | {rates[1] / rates[0]:.1f}× |")

if __name__ == '__main__': main()
