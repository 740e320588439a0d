#!/usr/bin/python3
"""Draws a training log (`mandheling train --log FILE.csv`) as loss and accuracy curves.

  /usr/bin/python3 scripts/plot_log.py run.csv -o run.png [--title TEXT]

Left: the running train loss at every logged row and the test loss at each epoch's end, against
the step; right: the test accuracy at each epoch's end. Needs matplotlib (python3-matplotlib)."""
import argparse
import csv
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--title")
    a = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    try:
        rows = list(csv.DictReader(open(a.log)))
    except OSError as e:
        sys.exit(f"plot_log.py: {a.log}: {e.strerror}")
    need = {"step", "train_loss", "test_loss", "test_accuracy", "epoch_end"}
    if not rows or not need <= set(rows[0]):
        sys.exit(f"plot_log.py: {a.log}: not a mandheling train --log file (columns {sorted(need)} expected)")
    step = [int(r["step"]) for r in rows]
    ends = [r for r in rows if r["epoch_end"] == "1" and r["test_accuracy"]]
    fig, (l, r) = plt.subplots(1, 2, figsize=(10, 4))
    l.plot(step, [float(r["train_loss"]) for r in rows], label="train loss (running mean of the epoch)")
    if ends:
        l.plot([int(e["step"]) for e in ends], [float(e["test_loss"]) for e in ends], "o-", label="test loss")
        r.plot([int(e["step"]) for e in ends], [100 * float(e["test_accuracy"]) for e in ends], "o-", color="C2")
    l.set_xlabel("step"), l.set_ylabel("loss"), l.legend(), l.grid(alpha=0.3)
    r.set_xlabel("step"), r.set_ylabel("test accuracy (%)"), r.grid(alpha=0.3)
    prec = rows[0].get("precision", "")
    fig.suptitle(a.title or f"{a.log} ({prec}, {rows[0].get('backend', '')})")
    fig.tight_layout()
    fig.savefig(a.out, dpi=100)
    print(f"{a.out}: {len(rows)} rows, {len(ends)} epochs")


if __name__ == "__main__":
    main()
