#!/usr/bin/env python3
# Fits the DSP cost model's packets per unit of work (src/backend/dsp/cost.c) to executed-packet
# counts: reads tables of `mandheling bench --backend dsp --dsp-layers FILE`, prints the C table.
"""usage: dsp_calibrate.py TABLE.tsv... (from bench --dsp-layers; see scripts/dsp_calibrate.sh)

Least squares on relative error (each layer-pass row weighs 1/counted), coefficients kept >= 0 by
dropping any that comes out negative and fitting again. Prints the coefficients, then every row's
counted/modelled ratio under them and the worst ratio either way."""
import sys


def read(paths):
    names, rows = None, []
    for p in paths:
        with open(p) as f:
            head = f.readline().rstrip("\n").split("\t")
            if names is None:
                names = head[7:]
            elif head[7:] != names:
                sys.exit(f"{p}: its work columns differ from the first table's")
            for line in f:
                c = line.rstrip("\n").split("\t")
                rows.append((p, c[1], c[2], float(c[4]), [float(x) for x in c[7:]]))
    return names, rows


def solve(a, b):
    """Solves a x = b (square) by Gaussian elimination with partial pivoting."""
    n = len(a)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        if abs(m[i][i]) < 1e-300:
            raise ZeroDivisionError
        for r in range(n):
            if r != i:
                f = m[r][i] / m[i][i]
                m[r] = [x - f * y for x, y in zip(m[r], m[i])]
    return [m[i][n] / m[i][i] for i in range(n)]


def fit(names, rows):
    active = [j for j in range(len(names)) if any(r[4][j] for r in rows)]
    while True:
        ata = [[0.0] * len(active) for _ in active]
        atb = [0.0] * len(active)
        for _, _, _, y, x in rows:
            w = 1.0 / y  # relative error
            v = [x[j] * w for j in active]
            for i in range(len(active)):
                atb[i] += v[i] * 1.0
                for k in range(len(active)):
                    ata[i][k] += v[i] * v[k]
        for i in range(len(active)):
            ata[i][i] *= 1 + 1e-9
        coef = solve(ata, atb)
        neg = [active[i] for i, c in enumerate(coef) if c < 0]
        if not neg:
            out = [0.0] * len(names)
            for i, j in enumerate(active):
                out[j] = coef[i]
            return out
        active = [j for j in active if j not in neg]


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    names, rows = read(sys.argv[1:])
    rows = [r for r in rows if r[3] > 0]
    coef = fit(names, rows)
    print("coefficients (packets per unit of work):")
    for n, c in zip(names, coef):
        print(f"  {n:10s} {c:.4g}")
    worst = 1.0
    print(f"\n{'table':40s} {'layer':20s} {'pass':4s} {'counted':>12s} {'modelled':>12s} {'ratio':>7s}")
    for p, name, ps, y, x in rows:
        m = sum(c * v for c, v in zip(coef, x))
        r = y / m if m > 0 else float("inf")
        worst = max(worst, r, 1 / r if r > 0 else float("inf"))
        print(f"{p[-40:]:40s} {name:20s} {ps:4s} {y:12.0f} {m:12.0f} {r:7.2f}")
    print(f"\nworst ratio either way: {worst:.2f} over {len(rows)} layer-passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
