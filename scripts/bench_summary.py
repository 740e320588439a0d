#!/usr/bin/python3
"""Summarises scripts/bench.sh's raw rounds (round, model, variant, ms, kernel table per line) into
bench.json, bench.md (per model and variant: median over rounds, range, ratio to our fp32 step and to
PyTorch's) and bench.png (step time per model for fp32, int8, niti and PyTorch).

  /usr/bin/python3 scripts/bench_summary.py RAW.tsv OUT_DIR BATCH THREADS CPU
"""
import collections, json, statistics, sys

raw, out, batch, threads, cpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ms, table, models = collections.defaultdict(list), {}, []
for line in list(open(raw))[1:]:
    r, m, v, t, isa = line.rstrip("\n").split("\t")
    ms[m, v].append(float(t))
    table[m, v] = isa
    if m not in models:
        models.append(m)
VARIANTS = ("fp32", "int8", "niti", "pytorch")
res = []
for m in models:
    base, torch = statistics.median(ms[m, "fp32"]), statistics.median(ms[m, "pytorch"])
    for v in VARIANTS:
        if (m, v) not in ms:
            continue
        t = statistics.median(ms[m, v])
        res.append(dict(model=m, variant=v, ms=t, range=[min(ms[m, v]), max(ms[m, v])], rounds=len(ms[m, v]),
                        vs_fp32=t / base, vs_pytorch=t / torch, isa=table[m, v], batch=batch, threads=threads,
                        cpu=cpu))
json.dump(res, open(f"{out}/bench.json", "w"), indent=1)
rounds = res[0]["rounds"] if res else 0
md = [f"{cpu}; batch {batch}, {threads} threads, {rounds} interleaved rounds; each round's value is that "
      "run's median step, the table gives the median over rounds and the range (ms per training step)", "",
      "| model | variant | kernel table | step ms (range) | / our fp32 | / PyTorch |", "|---|---|---|---:|---:|---:|"]
md += [f"| {r['model']} | {r['variant']} | {r['isa']} | {r['ms']:.1f} ({r['range'][0]:.1f}-{r['range'][1]:.1f}) | "
       f"{r['vs_fp32']:.2f}x | {r['vs_pytorch']:.2f}x |" for r in res]
open(f"{out}/bench.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colours = {"fp32": "#4a7", "int8": "#47c", "niti": "#c74", "pytorch": "#888"}
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.2
    for k, v in enumerate(VARIANTS):
        xs, ys = [], []
        for i, m in enumerate(models):
            r = next((r for r in res if r["model"] == m and r["variant"] == v), None)
            if r:
                xs.append(i + (k - 1.5) * width), ys.append(r["vs_pytorch"])
        ax.bar(xs, ys, width, label=v, color=colours[v])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models)
    ax.set_ylabel("step time / PyTorch's (lower is faster)")
    ax.set_title(f"training step, batch {batch}, {threads} threads: {cpu}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}/bench.png", dpi=110)
    print(f"plot: {out}/bench.png")
except ImportError:
    print("matplotlib not installed: no plot")
