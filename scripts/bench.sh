#!/usr/bin/env bash
# Training-step speed against PyTorch on this machine: for each model, `mandheling bench` and
# reference/zoo.py alternate (same batch, threads, median of their timed steps), several rounds;
# the per-model median of each is reported with the ratio. Writes bench/results/bench.{json,md,png}.
#   scripts/bench.sh [--batch B] [--threads T] [--rounds R] [MODEL...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
zoo=${ZOO:-$root/../shared/reference/zoo.py}
batch=32 threads=2 rounds=5
while [ $# -gt 0 ]; do
  case $1 in
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
models=${*:-lenet5 cnn6 cnn6-nobn vgg11 resnet18 mobilenetv2}
out=$root/bench/results
mkdir -p "$out"
raw=$out/bench-raw.tsv
: >"$raw"
steps_for() { case $1 in lenet5|cnn6|cnn6-nobn) echo 30 ;; *) echo 12 ;; esac; }
for r in $(seq "$rounds"); do
  for m in $models; do
    s=$(steps_for "$m")
    c=$("$bin" bench --model "$m" --batch "$batch" --threads "$threads" --steps "$s" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    t=$(/usr/bin/python3 "$zoo" --threads "$threads" --batch "$batch" --iters "$s" "$m" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    printf '%s\t%s\t%s\n' "$m" "$c" "$t" | tee -a "$raw"
  done
done
/usr/bin/python3 "$root/scripts/bench_summary.py" "$raw" "$out" "$batch" "$threads"
