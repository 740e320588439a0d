#!/usr/bin/env bash
# The algorithms side by side on Fashion-MNIST: fp32, int8 and (for BN-free models) niti with
# adaptive and exact rescaling, same model, seed, batch and epochs. Writes
# bench/results/accuracy-<model>-{c,int8,niti,niti-exact}.json and prints a table.
#   scripts/precision.sh [--epochs N] MODEL...        (default: lenet5 cnn6-nobn, 5 epochs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
epochs=5
[ "${1:-}" = "--epochs" ] && { epochs=$2; shift 2; }
models=${*:-lenet5 cnn6-nobn}
out=$root/bench/results
mkdir -p "$out"
for m in $models; do
  runs=("c:--precision fp32" "int8:--precision int8")
  info=$("$bin" info --model "$m") # (not piped into grep -q: with pipefail its early exit fails the pipe)
  if ! grep -q "niti.*n/a" <<<"$info"; then
    runs+=("niti:--precision niti" "niti-exact:--precision niti --rescale exact")
  fi
  for r in "${runs[@]}"; do
    tag=${r%%:*} args=${r#*:}
    echo "== $m: $args"
    # shellcheck disable=SC2086
    "$bin" train --model "$m" --epochs "$epochs" $args --quiet --json "$out/accuracy-$m-$tag.json"
  done
done
/usr/bin/python3 - "$out" $models <<'PY'
import json, os, sys
out, models = sys.argv[1], sys.argv[2:]
print(f"{'model':<10} {'fp32':>7} {'int8':>7} {'niti':>7} {'niti exact':>11} {'niti - fp32':>12} {'adaptive - exact':>17}")
for m in models:
    acc = {}
    for tag in ('c', 'int8', 'niti', 'niti-exact'):
        p = f"{out}/accuracy-{m}-{tag}.json"
        acc[tag] = 100 * json.load(open(p))['test_accuracy'] if os.path.exists(p) else None
    f = lambda v: f"{v:.2f}%" if v is not None else "n/a"
    d1 = f"{acc['niti'] - acc['c']:+.2f}" if acc['niti'] is not None else "n/a"
    d2 = f"{acc['niti'] - acc['niti-exact']:+.2f}" if acc['niti-exact'] is not None else "n/a"
    print(f"{m:<10} {f(acc['c']):>7} {f(acc['int8']):>7} {f(acc['niti']):>7} {f(acc['niti-exact']):>11} {d1:>12} {d2:>17}")
PY
