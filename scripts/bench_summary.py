#!/usr/bin/python3
"""Summarises scripts/bench.sh's raw rounds (model, mandheling ms, PyTorch ms per line) into
bench.json, bench.md (medians over rounds, ranges, ratio) and bench.png (ratio per model).

  /usr/bin/python3 scripts/bench_summary.py RAW.tsv OUT_DIR BATCH THREADS
"""
import json, statistics, sys

raw, out, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = {}
for line in open(raw):
    m, c, t = line.split()
    rows.setdefault(m, ([], []))[0].append(float(c))
    rows[m][1].append(float(t))
res = []
for m, (c, t) in rows.items():
    mc, mt = statistics.median(c), statistics.median(t)
    res.append(dict(model=m, batch=batch, threads=threads, rounds=len(c), mandheling_ms=mc, pytorch_ms=mt,
                    mandheling_range=[min(c), max(c)], pytorch_range=[min(t), max(t)], ratio=mc / mt))
json.dump(res, open(f"{out}/bench.json", "w"), indent=1)
md = [f"batch {batch}, {threads} threads, {res[0]['rounds']} interleaved rounds; each round's value is that run's "
      "median step; the table gives the median over rounds and the range (ms per training step)", "",
      "| model | mandheling ms (range) | PyTorch ms (range) | mandheling / PyTorch |", "|---|---:|---:|---:|"]
md += [f"| {r['model']} | {r['mandheling_ms']:.1f} ({r['mandheling_range'][0]:.1f}-{r['mandheling_range'][1]:.1f}) | "
       f"{r['pytorch_ms']:.1f} ({r['pytorch_range'][0]:.1f}-{r['pytorch_range'][1]:.1f}) | {r['ratio']:.2f}x |"
       for r in res]
open(f"{out}/bench.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([r["model"] for r in res], [r["ratio"] for r in res], color="#4a7")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_ylabel("step time / PyTorch (lower is better)")
    ax.set_title(f"FP32 training step, batch {batch}, {threads} threads")
    for i, r in enumerate(res):
        ax.text(i, r["ratio"], f"{r['ratio']:.2f}", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(f"{out}/bench.png", dpi=110)
    print(f"plot: {out}/bench.png")
except ImportError:
    print("matplotlib not installed: no plot")
