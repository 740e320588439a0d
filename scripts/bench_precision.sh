#!/usr/bin/env bash
# Training-step time of each algorithm against our own fp32 step, interleaved rounds on the same
# machine: fp32 / int8 for every model given, plus niti with adaptive and exact rescaling for
# BN-free models (with the share of the step spent rescaling). Writes
# bench/results/precision-speed.{tsv,md} and prints the table.
#   scripts/bench_precision.sh [--rounds R] [--steps N] MODEL...
#   (default: 3 rounds of 10 steps; cnn6 vgg11 resnet18 lenet5 cnn6-nobn; batch 32, 2 threads)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
rounds=3 steps=10
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) break ;;
  esac
done
models=${*:-cnn6 vgg11 resnet18 lenet5 cnn6-nobn}
out=$root/bench/results
mkdir -p "$out"
tsv=$out/precision-speed.tsv
printf 'round\tmodel\tvariant\tmedian_ms\trescale_share\tpeak_bytes\n' >"$tsv"
for r in $(seq 1 "$rounds"); do
  for m in $models; do
    variants=("fp32:--precision fp32" "int8:--precision int8")
    if ! "$bin" info --model "$m" | grep -q "niti.*n/a"; then
      variants+=("niti:--precision niti" "niti-exact:--precision niti --rescale exact")
    fi
    for v in "${variants[@]}"; do
      tag=${v%%:*} args=${v#*:}
      # shellcheck disable=SC2086
      "$bin" bench --model "$m" --batch 32 --threads 2 --steps "$steps" $args --json "$out/.bench.json" >/dev/null
      /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('\t'.join([sys.argv[2], sys.argv[3], sys.argv[4], '%.2f' % j['step_ms_median'], '%.4f' % j.get('rescale_share', 0), str(j['peak_bytes'])]))" \
        "$out/.bench.json" "$r" "$m" "$tag" >>"$tsv"
      echo "round $r $m $tag: $(tail -1 "$tsv" | cut -f4) ms" >&2
    done
  done
done
rm -f "$out/.bench.json"
/usr/bin/python3 - "$tsv" "$out/precision-speed.md" <<'PY'
import collections, statistics, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])][1:]
ms, share, peak = collections.defaultdict(list), collections.defaultdict(list), {}
order = []
for r, m, v, t, s, p in rows:
    ms[m, v].append(float(t)); share[m, v].append(float(s)); peak[m, v] = int(p)
    if m not in order: order.append(m)
lines = ['| model | variant | step ms (median of rounds) | / fp32 step | rescaling share of step | planned memory / fp32 |',
         '|---|---|---:|---:|---:|---:|']
for m in order:
    base = statistics.median(ms[m, 'fp32'])
    for v in ('fp32', 'int8', 'niti', 'niti-exact'):
        if (m, v) not in ms: continue
        t = statistics.median(ms[m, v])
        sh = f"{100 * statistics.median(share[m, v]):.1f}%" if v.startswith('niti') else ''
        lines.append(f"| {m} | {v} | {t:.1f} | {t / base:.2f}x | {sh} | {peak[m, v] / peak[m, 'fp32']:.2f}x |")
open(sys.argv[2], 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
PY
