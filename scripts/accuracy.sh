#!/usr/bin/env bash
# Accuracy side by side: `mandheling train` and its PyTorch twin (scripts/train_torch.py) on the same
# model, data, hyper-parameters and epochs. Writes bench/results/accuracy-<model>-{c,torch}.json.
#   scripts/accuracy.sh [--epochs N] MODEL...        (default: lenet5 cnn6, 5 epochs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
epochs=5
[ "${1:-}" = "--epochs" ] && { epochs=$2; shift 2; }
models=${*:-lenet5 cnn6}
out=$root/bench/results
mkdir -p "$out"
for m in $models; do
  echo "== $m: mandheling (fp32)"
  "$bin" train --model "$m" --epochs "$epochs" --json "$out/accuracy-$m-c.json"
  echo "== $m: PyTorch"
  /usr/bin/python3 "$root/scripts/train_torch.py" --model "$m" --epochs "$epochs" --json "$out/accuracy-$m-torch.json"
done
/usr/bin/python3 - "$out" $models <<'PY'
import json, sys
out, models = sys.argv[1], sys.argv[2:]
print(f"{'model':<10} {'mandheling':>11} {'pytorch':>9} {'diff (pts)':>11}")
for m in models:
    c = json.load(open(f"{out}/accuracy-{m}-c.json")); t = json.load(open(f"{out}/accuracy-{m}-torch.json"))
    print(f"{m:<10} {100*c['test_accuracy']:>10.2f}% {100*t['test_accuracy']:>8.2f}% {100*(c['test_accuracy']-t['test_accuracy']):>+11.2f}")
PY
