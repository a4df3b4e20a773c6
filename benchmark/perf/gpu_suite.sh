#!/usr/bin/env bash
# The GPU measurements of benchmark/RESULTS.md in one script (stages run in the order given).
#
#   benchmark/perf/gpu_suite.sh OUT STAGE [STAGE ...]
#
# STAGE: bench    harness, paper profile: GAN / HTR / generation, naive vs optimised (bench_train.json)
#        compile  the same plus the torch.compile variant (bench_compile.json)
#        fast     harness, paper profile: GAN naive / optimised / fast step (gan/fast.py) / fast step compiled
#                 whole in reduce-overhead mode (CUDA graphs), one process (bench_fast.json)
#        gan-fast paper-configuration GAN training with --fast --compile for $FAST_MINUTES minutes (gan_fast_log.jsonl):
#                 the real trainer's rate beside the harness's
#        metrics  FID feature extraction, Fréchet distance, Geometry Score 5k×5k×100 (bench_metrics.json)
#        data     build two French stand-in sets of $N_FID training images at 128×512
#        fid      FID 25k/25k end to end through `htraug metrics fid` (cold: PNG decode + packing; warm)
#        htr      one HTR epoch over the first set, fp32 and bf16 (htr_fp32/, htr_bf16/ logs)
#        gan      paper-configuration GAN training for $GAN_MINUTES minutes with $GAN_FLAGS (gan_log.jsonl, samples)
# Environment: DEVICE (cuda), WORKERS (all cores), FONT_DIR (system fonts), N_FID (25000),
# GAN_MINUTES (8), GAN_FLAGS (--amp --channels-last), FAST_MINUTES (2), WORK (OUT/work), SEEDS (data stage: "1 2").
# Issue-20 run (about 7 minutes of device time): gpu_suite.sh OUT fast data gan-fast fid htr  with N_FID=25000 SEEDS="1 2"
# (htr: the real trainer on the uint8 device input path, img/s from its log).
set -euo pipefail
OUT=${1:?usage: gpu_suite.sh OUT STAGE...}; shift
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-$(nproc)}
N_FID=${N_FID:-25000}
GAN_MINUTES=${GAN_MINUTES:-8}
GAN_FLAGS=${GAN_FLAGS:---amp --channels-last}
WORK=${WORK:-$OUT/work}
FONTS=()
[ -n "${FONT_DIR:-}" ] && FONTS=(--font-dir "$FONT_DIR")
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
HT="python3 -m benchmark.cli"

stamp() { echo "== $(date +%T) $*"; }
seconds() { local t0=$1; python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$t0"; }

for stage in "$@"; do
  case $stage in
    bench)
      stamp "harness: GAN, HTR, generation (naive vs optimised)"
      $HT bench --profile paper --device "$DEVICE" --only gan,htr,generation --iters 30 --warmup 5 \
          --json "$OUT/bench_train.json" ;;
    compile)
      stamp "harness: + torch.compile"
      $HT bench --profile paper --device "$DEVICE" --only gan,htr --iters 30 --warmup 5 --compile \
          --json "$OUT/bench_compile.json" ;;
    fast)
      stamp "harness: GAN naive / optimised / fast step / fast step + CUDA graphs"
      $HT bench --profile paper --device "$DEVICE" --only gan --iters 30 --warmup 10 --compile \
          --compile-mode reduce-overhead --json "$OUT/bench_fast.json" ;;
    gan-fast)
      stamp "GAN, paper configuration, fast step compiled, ${FAST_MINUTES:-2} min"
      rm -rf "$WORK/gan_fast"
      $HT gan train --data "$WORK/fr_1/train" --val "$WORK/fr_1/val" --out "$WORK/gan_fast" --device "$DEVICE" \
          --max-minutes "${FAST_MINUTES:-2}" --iterations 300000 --eval-every 1000 --fid-n 0 --gs-n 0 --quiet \
          --amp --channels-last --fast --compile
      cp "$WORK/gan_fast/log.jsonl" "$OUT/gan_fast_log.jsonl" ;;
    metrics)
      stamp "harness: features, Fréchet, Geometry Score"
      $HT bench --profile paper --device "$DEVICE" --only features,frechet,gs --batch 250 --inception-n 5000 \
          --workers "$WORKERS" --gs-ref-reps 1 --json "$OUT/bench_metrics.json" ;;
    data)
      for seed in ${SEEDS:-1 2}; do
        stamp "build French stand-in, seed $seed, $N_FID images"
        t0=$(date +%s.%N)
        $HT data build --dataset rimes-like --out "$WORK/fr_$seed" --train "$N_FID" --val 1000 --test 10 \
            --seed "$seed" --workers "$WORKERS" "${FONTS[@]}" --overwrite > "$WORK/build_$seed.log"
        echo "build seed $seed: $(seconds "$t0") s for $N_FID + 1010 images" | tee -a "$OUT/timings.txt"
      done ;;
    fid)
      python3 -c "import torch, sys; from benchmark.metrics.inception import FIDInceptionV3; torch.manual_seed(0); torch.save(FIDInceptionV3().state_dict(), sys.argv[1])" "$WORK/inception_random.pth"
      for pass in cold warm; do
        stamp "FID $N_FID/$N_FID ($pass)"
        t0=$(date +%s.%N)
        $HT metrics fid --real "$WORK/fr_1/train" --fake "$WORK/fr_2/train" --features inception \
            --inception-weights "$WORK/inception_random.pth" --device "$DEVICE" --batch-size 250 --no-cache --json \
            > "$OUT/fid_$pass.json"
        echo "fid $pass: $(seconds "$t0") s (process wall, including start-up and image loading)" | tee -a "$OUT/timings.txt"
      done ;;
    htr)
      for variant in fp32 bf16; do
        stamp "HTR one epoch ($variant)"
        flags=(); [ "$variant" = bf16 ] && flags=(--amp on)
        rm -rf "$WORK/htr_$variant"
        t0=$(date +%s.%N)
        $HT htr train --train "$WORK/fr_1/train" --val "$WORK/fr_1/val" --out "$WORK/htr_$variant" --max-epochs 1 \
            --device "$DEVICE" --lr 1e-3 --quiet "${flags[@]}"
        echo "htr epoch $variant: $(seconds "$t0") s process wall for $N_FID images (+ validation on 1000)" | tee -a "$OUT/timings.txt"
        cp "$WORK/htr_$variant/log.jsonl" "$OUT/htr_${variant}_log.jsonl"
      done ;;
    gan)
      stamp "GAN, paper configuration, $GAN_MINUTES min, flags: $GAN_FLAGS"
      rm -rf "$WORK/gan"
      # shellcheck disable=SC2086
      $HT gan train --data "$WORK/fr_1/train" --val "$WORK/fr_1/val" --out "$WORK/gan" --device "$DEVICE" \
          --max-minutes "$GAN_MINUTES" --iterations 300000 --eval-every 1000 --fid-n 0 --gs-n 500 --quiet $GAN_FLAGS
      cp "$WORK/gan/log.jsonl" "$OUT/gan_log.jsonl"
      last=$(ls "$WORK/gan/samples" | sort | tail -2)
      for f in $last; do cp "$WORK/gan/samples/$f" "$OUT/gan_$f"; done ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
stamp done
