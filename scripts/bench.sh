#!/usr/bin/env bash
# Training-step speed against PyTorch on this machine: for each model, `mandheling bench` and
# reference/zoo.py alternate (same batch, threads, median of their timed steps), several rounds;
# the per-model median of each is reported with the ratio. Writes bench/results/bench.{json,md,png}.
#   scripts/bench.sh [--batch B] [--threads T] [--rounds R] [MODEL...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MANDHELING:-$root/build/mandheling}
zoo=${ZOO:-$root/../shared/reference/zoo.py}
batch=32 threads=2 rounds=3
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
steps_for() { case $1 in lenet5|cnn6|cnn6-nobn) echo 20 ;; *) echo 10 ;; esac; }
for r in $(seq "$rounds"); do
  for m in $models; do
    s=$(steps_for "$m")
    c=$("$bin" bench --model "$m" --batch "$batch" --threads "$threads" --steps "$s" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    t=$(/usr/bin/python3 "$zoo" --threads "$threads" --batch "$batch" --iters "$s" "$m" | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
    printf '%s\t%s\t%s\n' "$m" "$c" "$t" | tee -a "$raw"
  done
done
/usr/bin/python3 - "$raw" "$out" "$batch" "$threads" <<'PY'
import json, statistics, sys
raw, out, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = {}
for line in open(raw):
    m, c, t = line.split()
    rows.setdefault(m, ([], []))[0].append(float(c)); rows[m][1].append(float(t))
res = []
for m, (c, t) in rows.items():
    mc, mt = statistics.median(c), statistics.median(t)
    res.append(dict(model=m, batch=batch, threads=threads, mandheling_ms=mc, pytorch_ms=mt, ratio=mc / mt))
json.dump(res, open(f"{out}/bench.json", "w"), indent=1)
md = [f"batch {batch}, {threads} threads, median over rounds of per-run medians (ms per training step)", "",
      "| model | mandheling ms | PyTorch ms | mandheling / PyTorch |", "|---|---:|---:|---:|"]
md += [f"| {r['model']} | {r['mandheling_ms']:.1f} | {r['pytorch_ms']:.1f} | {r['ratio']:.2f}x |" for r in res]
open(f"{out}/bench.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
try:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([r["model"] for r in res], [r["ratio"] for r in res], color="#4a7")
    ax.axhline(1.0, color="k", lw=0.8); ax.set_ylabel("step time / PyTorch (lower is better)")
    ax.set_title(f"FP32 training step, batch {batch}, {threads} threads")
    for i, r in enumerate(res): ax.text(i, r["ratio"], f"{r['ratio']:.2f}", ha="center", va="bottom")
    fig.tight_layout(); fig.savefig(f"{out}/bench.png", dpi=110)
    print(f"plot: {out}/bench.png")
except ImportError:
    print("matplotlib not installed: no plot")
PY
