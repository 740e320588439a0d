#!/usr/bin/env bash
# Counts the DSP program's executed packets per layer for the calibration set and fits the cost
# model's packets per unit of work (prints the table for src/backend/dsp/cost.c and every ratio).
set -euo pipefail
build=${BUILD:-build}
out=${OUT:-bench/results/dsp-calibration}
mkdir -p "$out"
run() { # model precision batch [--no-segments]
  echo "counting $1 $2 batch $3 ${4:-}" >&2
  "$build/mandheling" bench --model "$1" --precision "$2" --backend dsp --batch "$3" --steps 2 ${4:-} \
    --dsp-layers "$out/$1-$2-$3${4:+-layers}.tsv" > /dev/null
}
# niti runs its convolution chains as segments; --no-segments gives the per-layer rates (the planner's)
for m in lenet5 cnn6-nobn; do for b in 8 16 32; do run "$m" niti "$b"; done; run "$m" niti 16 --no-segments; done
run lenet5 int8 16
python3 "$(dirname "$0")/dsp_calibrate.py" "$out"/*.tsv | tee "$out/fit.txt"
