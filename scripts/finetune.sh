#!/usr/bin/env bash
# Transfer learning on Fashion-MNIST: pretrain cnn6 (fp32) on classes 0-4, then fine-tune on classes
# 5-9 from 1,000 training images, (a) the last layer only (--classes 5 --train-only last:1) and
# (b) all layers, in fp32 and int8 from the FP32 weights, and in niti from a BN-free cnn6-nobn
# pretrained the same way. Reports accuracy on the 5,000 test images of classes 5-9 and the step
# time of (a) against (b). Writes bench/results/finetune.{tsv,md}.
#   scripts/finetune.sh [--pretrain-epochs E] [--epochs E]   (defaults 3 and 10)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
src=${MH_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
pre=3 epochs=10
while [ $# -gt 0 ]; do
  case $1 in
    --pretrain-epochs) pre=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    *) echo "usage: $0 [--pretrain-epochs E] [--epochs E]" >&2; exit 2 ;;
  esac
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 "$root/scripts/fmnist_subset.py" "$src" "$T/a" --classes 0,1,2,3,4 >/dev/null
python3 "$root/scripts/fmnist_subset.py" "$src" "$T/b" --classes 5,6,7,8,9 --train 1000 >/dev/null
out=$root/bench/results
mkdir -p "$out"
tsv=$out/finetune.tsv
printf 'model\tprecision\tlayers\taccuracy\tstep_ms\n' >"$tsv"
for model in cnn6 cnn6-nobn; do
  echo "pretraining $model (fp32) on classes 0-4, $pre epochs" >&2
  "$bin" train --model "$model" --data "$T/a" --epochs "$pre" --quiet --save "$T/$model.st" >&2
done
run() { # model precision layers(last|all)
  local model=$1 prec=$2 layers=$3 extra=()
  [ "$layers" = last ] && extra=(--train-only last:1)
  "$bin" train --model "$model" --init "$T/$model.st" --classes 5 --precision "$prec" --data "$T/b" \
    --epochs "$epochs" --batch 64 --quiet --json "$T/r.json" "${extra[@]}" >&2
  acc=$(python3 -c "import json; print('%.2f' % (100 * json.load(open('$T/r.json'))['test_accuracy']))")
  # step time at the same batch: the bench's median over 20 steps, this machine
  "$bin" info --model "$model" --export "$T/$model.mh" >/dev/null
  sed -i '$ s/out=10/out=5/' "$T/$model.mh"
  ms=$("$bin" bench --model "$T/$model.mh" --precision "$prec" --batch 64 --steps 20 "${extra[@]}" | head -1 |
    grep -o 'median_ms=[0-9.]*' | cut -d= -f2)
  printf '%s\t%s\t%s\t%s\t%s\n' "$model" "$prec" "$layers" "$acc" "$ms" >>"$tsv"
  echo "$model $prec $layers: test accuracy $acc%, step $ms ms" >&2
}
for layers in last all; do
  run cnn6 fp32 $layers
  run cnn6 int8 $layers
  run cnn6-nobn niti $layers
done
python3 - "$tsv" "$out/finetune.md" "$pre" "$epochs" <<'PY'
import csv, sys, subprocess
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
info = open("/proc/cpuinfo").read().split("\n")
field = lambda k: next((l.split(":", 1)[1].strip() for l in info if l.split(":")[0].strip() == k), "?")
cpu = f"{field('model name')} (family {field('cpu family')}, model {field('model')})"
by = {(r["model"], r["precision"], r["layers"]): r for r in rows}
lines = [f"Fine-tuning on Fashion-MNIST classes 5-9 (1,000 training images, {sys.argv[4]} epochs, batch 64) from a model",
         f"pretrained in fp32 on classes 0-4 ({sys.argv[3]} epochs); test accuracy on the 5,000 test images of classes 5-9;",
         f"step time: `mandheling bench` median of 20 steps at batch 64, 2 threads, {cpu}.", "",
         "| model | precision | last layer only: accuracy | step ms | all layers: accuracy | step ms | step time all / last |",
         "|---|---|---:|---:|---:|---:|---:|"]
for model, prec in (("cnn6", "fp32"), ("cnn6", "int8"), ("cnn6-nobn", "niti")):
    a, b = by[(model, prec, "last")], by[(model, prec, "all")]
    lines.append(f"| {model} | {prec} | {a['accuracy']}% | {a['step_ms']} | {b['accuracy']}% | {b['step_ms']} | "
                 f"{float(b['step_ms']) / float(a['step_ms']):.1f}x |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
