#!/usr/bin/env bash
# A GAN that writes readable French words on a CPU, from scratch, in one command:
#   benchmark/readable_gan.sh OUT
# 1. build the French stand-in at the quick size (32×128);
# 2. train three reader recognizers (seeds 1-3) and an independent judge (seed 0, classic
#    augmentation) on its real training images;
# 3. train the GAN at the quick profile's sizes with `--cond spatial`, R started from reader 1,
#    readers 2 and 3 frozen beside it, distorted fakes (`--r-augment`), no gradient balancing,
#    judged by the judge (readability CER, FID) with sample grids in OUT/gan/samples/.
# Every step is skipped when its output exists, so an interrupted run continues where it stopped
# (a stopped GAN resumes from its last.pt). Sizes and budgets come from the environment:
#   N_TRAIN (20000)  READER_MINUTES (15)  JUDGE_MINUTES (30)  GAN_ITERATIONS (2400)  THREADS (2)
# Measured in benchmark/RESULTS.md ("GAN"); about 1 h 45 min on 2 CPU cores with the defaults.
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT" >&2
    exit 2
fi
OUT=$1
N_TRAIN=${N_TRAIN:-20000}
READER_MINUTES=${READER_MINUTES:-15}
JUDGE_MINUTES=${JUDGE_MINUTES:-30}
GAN_ITERATIONS=${GAN_ITERATIONS:-2400}
THREADS=${THREADS:-2}
HTRAUG=${HTRAUG:-htraug}
DATA=$OUT/data

if [[ ! -f $DATA/train/meta.json ]]; then
    $HTRAUG data build --dataset rimes-like --out "$DATA" --train "$N_TRAIN" --val $((N_TRAIN / 10)) \
        --test $((N_TRAIN / 10)) --height 32 --width 128 --overwrite
fi

recognizer() {   # recognizer RUN SEED MINUTES [extra flags]
    local run=$1 seed=$2 minutes=$3
    shift 3
    if [[ -f $run/best.pt ]] && [[ ! -f $run/last.pt || -f $run/.done ]]; then
        return
    fi
    local resume=()
    [[ -f $run/last.pt ]] && resume=(--resume)
    $HTRAUG htr train --train "$DATA/train" --val "$DATA/val" --out "$run" --height 32 --width 128 \
        --width-mult 1.0 --batch-size 32 --lr 1e-3 --dropout 0.3 --lr-factor 0.5 --lr-patience 2 \
        --patience 8 --max-epochs 200 --max-minutes "$minutes" --threads "$THREADS" --seed "$seed" \
        --amp "${resume[@]}" "$@"
    touch "$run/.done"
}

recognizer "$OUT/reader1" 1 "$READER_MINUTES"
recognizer "$OUT/reader2" 2 "$READER_MINUTES"
recognizer "$OUT/reader3" 3 "$READER_MINUTES"
recognizer "$OUT/judge" 0 "$JUDGE_MINUTES" --augment

resume=()
[[ -f $OUT/gan/last.pt ]] && resume=(--resume)
$HTRAUG gan train --data "$DATA/train" --out "$OUT/gan" --profile quick --cond spatial --d-norm none \
    --htr-width-mult 1.0 --r-init "$OUT/reader1" --readers "$OUT/reader2,$OUT/reader3" --r-augment \
    --alpha none --judge "$OUT/judge" --iterations "$GAN_ITERATIONS" --eval-every 300 --fid-n 300 \
    --gs-n 0 --threads "$THREADS" "${resume[@]}"
$HTRAUG htr eval --model "$OUT/judge" --data "$DATA/test" --json > "$OUT/.judge_test.json.tmp"
mv "$OUT/.judge_test.json.tmp" "$OUT/judge_test.json"
echo "readable GAN: $OUT/gan (log: $OUT/gan/log.jsonl, samples: $OUT/gan/samples/)"
