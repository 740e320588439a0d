#!/usr/bin/env bash
# Training-step speed of every algorithm against our fp32 step and against PyTorch, on this machine:
# for each model, `mandheling bench` in fp32, int8 and (BN-free models) niti, and PyTorch (FP32: the
# twin of the model file, python/mh_torch.py, or ZOO=.../zoo.py), interleaved in several rounds (same batch and threads; each run reports the median
# of its timed steps). The per-model medians over rounds are reported with their ranges, the CPU and
# the kernel table named. Writes bench/results/bench.{json,md,png} and bench-raw.tsv.
#   scripts/bench.sh [--batch B] [--threads T] [--rounds R] [--isa NAME] [MODEL...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
# the PyTorch peer: the repository's twin of models/*.mh (python/mh_torch.py bench), or ZOO=path/zoo.py
peer=(/usr/bin/python3 "$root/python/mh_torch.py" bench)
[ -n "${ZOO:-}" ] && peer=(/usr/bin/python3 "$ZOO")
batch=32 threads=2 rounds=5 isa=()
while [ $# -gt 0 ]; do
  case $1 in
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --isa) isa=(--isa "$2"); shift 2 ;;
    *) break ;;
  esac
done
models=${*:-lenet5 cnn6 cnn6-nobn vgg11 resnet18 mobilenetv2}
out=$root/bench/results
mkdir -p "$out"
raw=$out/bench-raw.tsv
printf 'round\tmodel\tvariant\tms\tisa\n' >"$raw"
steps_for() { case $1 in lenet5|cnn6|cnn6-nobn) echo 30 ;; *) echo 12 ;; esac; }
cpu=$("$bin" info --model lenet5 | sed -n 's/^cpu: //p')
for r in $(seq "$rounds"); do
  for m in $models; do
    s=$(steps_for "$m")
    variants=(fp32 int8)
    info=$("$bin" info --model "$m") # (not piped into grep -q: with pipefail its early exit fails the pipe)
    grep -q "niti.*n/a" <<<"$info" || variants+=(niti)
    for v in "${variants[@]}"; do
      line=$("$bin" bench --model "$m" --batch "$batch" --threads "$threads" --steps "$s" --precision "$v" "${isa[@]}" | head -1)
      ms=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$line") table=$(sed -n 's/.*isa=\([a-z0-9]*\).*/\1/p' <<<"$line")
      printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$m" "$v" "$ms" "$table" | tee -a "$raw"
    done
    t=$("${peer[@]}" --threads "$threads" --batch "$batch" --iters "$s" "$m" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$m" pytorch "$t" "torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')" | tee -a "$raw"
  done
done
/usr/bin/python3 "$root/scripts/bench_summary.py" "$raw" "$out" "$batch" "$threads" "$cpu"
