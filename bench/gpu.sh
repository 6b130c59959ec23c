#!/usr/bin/env bash
# Every GPU figure that BENCHMARKS.md still lacks, in parts that each fit one 10-minute device call.
#
#   bash bench/gpu.sh speed    # ResNet18 at 224 px (study pipeline vs medimb, plain and torch.compile) and DDPM at 128 px
#   bash bench/gpu.sh study    # 08_resampling at the study's setting: ResNet18 at 224 px, 5 seeds, on the data below
#   bash bench/gpu.sh ddpm     # 05_ddpm at GPU scale: default preset, with the copy control, 3 seeds
#   bash bench/gpu.sh gen      # GAN training at 64 and 128 px against a plain DCGAN loop; DiffuseMix batched bf16 against
#                              # one image per call (needs timbrooks/instruct-pix2pix carried as a folder: PIPELINE=path)
#   bash bench/gpu.sh benchmark  # 11_benchmark: bench/benchmark_gpu.toml (every method, real data), one cell per GPU; the
#                              # results folder under $OUT resumes it (carry it back as RESULTS=path to go on)
#   bash bench/gpu.sh arch     # the published SD 1.5 / InstructPix2Pix architectures with random weights (no download) and the
#                              # study classifiers: GPU memory of each study setting, measured (BENCHMARKS.md has the CPU estimates)
#   bash bench/gpu.sh sd15     # Stable Diffusion at 512 px: LoRA and full-UNet fine-tuning against a diffusers-example-style loop,
#                              # and generation; needs the weights carried as a folder: MODEL=path (a StableDiffusionImg2ImgPipeline save)
#
# On the lent GPU machine (no internet), carry the wheels it lacks and, for real data, a local file:
#   bash ../shared/tools/device-wheels.sh                # once, here: fills .whl/
#   mkdir -p .data && cp ../shared/data/pneumoniamnist.npz .data/ && echo /.data/ >> .git/info/exclude
#   device run, carry [".whl", ".data"], command: bash bench/gpu.sh speed
# Each part writes its logs and JSON under $OUT (or _runs/gpu when OUT is unset) and prints Markdown rows.
# DATA picks the study's data: a .npz or image folder (default .data/pneumoniamnist.npz when present, else the
# phantom with Kermany's counts at 224 px).
set -uo pipefail
part=${1:?usage: bash bench/gpu.sh speed|study|ddpm|gen|benchmark|sd15|arch}
out=${OUT:-_runs/gpu}; mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c 'import diffusers, imblearn, torchcam' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD} PYTHONUNBUFFERED=1 MEDIMB_CACHE=${MEDIMB_CACHE:-/tmp/medimb-cache}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$out/gpu.txt"
data=${DATA:-}
if [ -z "$data" ]; then [ -f .data/pneumoniamnist.npz ] && data=.data/pneumoniamnist.npz || data=phantom-pneumonia; fi

case $part in
speed)
  timeout 170 python3 bench/train_speed.py --device cuda 2>&1 | tee "$out/train_speed.log"
  timeout 150 python3 bench/train_speed.py --device cuda --compile --steps-conv 10 2>&1 | tee "$out/train_speed_compile.log"
  timeout 110 python3 bench/ddpm_speed.py --device cuda --size 128 --out "$out/ddpm_speed.json" 2>&1 | tee "$out/ddpm_speed.log"
  timeout 140 python3 bench/ddpm_speed.py --device cuda --size 128 --compile --batch 128 --out "$out/ddpm_speed_compile.json" 2>&1 | tee "$out/ddpm_speed_compile.log"
  ;;
study)
  extra=(); case $data in phantom*) extra=(--n 5216);; *.npz) extra=(--minority-fraction 0.16);; esac
  timeout 560 python3 bench/resampling_study.py --device cuda --dataset "$data" --size 224 --model resnet18 --epochs 10 \
    --batch-size 32 --seeds 0 1 2 3 4 --scale-methods --out "$out/resampling" "${extra[@]}" 2>&1 | tee "$out/resampling.log"
  ;;
ddpm)
  # real data at its own size with pneumonia made rare; else the hernia phantom at 64 px, 1,200 images
  case $data in *.npz) set_data=(-p dataset "$data" -p size 28 -p minority_fraction 0.16);;
                *) set_data=(-p dataset phantom-hernia -p size 64 -p n 1200);; esac
  timeout 570 python3 -m papermill nbs/05_ddpm.ipynb "$out/05_ddpm.ipynb" "${set_data[@]}" -p ddpm_preset default -p width small -p diffusion_steps 4000 -p diffusion_batch 128 -p sample_steps 50 \
    -p strengths '[0.5, 1.0]' -p model small_cnn -p epochs 20 -p lr 1e-3 -p seeds '[0,1,2]' -p results_dir "$out/results" \
    2>&1 | tail -40 | tee "$out/ddpm.log"
  ;;
arch)
  timeout 560 python3 bench/architectures.py --device cuda --sizes 256,512 --batches 4,8 --classifier-batch 32 --threads 8 \
    --out "$out/architectures" 2>&1 | tee "$out/architectures.log"
  ;;
gen)
  timeout 300 python3 bench/gan_speed.py --device cuda --sizes 64 128 2>&1 | tee "$out/gan_speed.log"
  timeout 280 python3 bench/diffusemix_speed.py ${PIPELINE:+--model "$PIPELINE"} 2>&1 | tee "$out/diffusemix_speed.log"
  ;;
benchmark)
  # every cell is committed the moment it finishes, so the time limit loses only the cells in flight; rerun with the
  # same results folder (RESULTS=path) to resume
  results=${RESULTS:-$out/results}; mkdir -p "$results"
  timeout 560 python3 -m medimb.cli benchmark --grid ${GRID:-bench/benchmark_gpu.toml} --gpus all --results "$results" \
    2>&1 | tail -60 | tee "$out/benchmark.log"
  ;;
sd15)
  timeout 560 python3 bench/sd15_speed.py ${MODEL:+--model "$MODEL"} --resolution 512 --out "$out/sd15_speed.json" 2>&1 | tee "$out/sd15_speed.log"
  ;;
*) echo "unknown part $part: speed, study, ddpm, gen, benchmark, sd15 or arch"; exit 2;;
esac
