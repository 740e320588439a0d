#!/usr/bin/env python3
# Writes a Fashion-MNIST (or MNIST) subset as gzipped IDX: the samples of some classes, relabelled
# 0..k-1 in the order given, optionally only the first N training samples. For fine-tuning runs.
"""usage: fmnist_subset.py SRC DST --classes 5,6,7,8,9 [--train N] [--test N]"""
import argparse
import gzip
import os


def read(path, header):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return raw[:header], raw[header:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--classes", required=True, help="comma-separated original labels, in their new order")
    ap.add_argument("--train", type=int, default=0, help="at most this many training samples (0: all)")
    ap.add_argument("--test", type=int, default=0, help="at most this many test samples (0: all)")
    a = ap.parse_args()
    keep = [int(c) for c in a.classes.split(",")]
    new = {c: i for i, c in enumerate(keep)}
    os.makedirs(a.dst, exist_ok=True)
    for split, limit in (("train", a.train), ("t10k", a.test)):
        ih, images = read(os.path.join(a.src, f"{split}-images-idx3-ubyte.gz"), 16)
        lh, labels = read(os.path.join(a.src, f"{split}-labels-idx1-ubyte.gz"), 8)
        per = int.from_bytes(ih[8:12], "big") * int.from_bytes(ih[12:16], "big")
        idx = [i for i, y in enumerate(labels) if y in new]
        if limit:
            idx = idx[:limit]
        img = b"".join(images[i * per:(i + 1) * per] for i in idx)
        lab = bytes(new[labels[i]] for i in idx)
        n = len(idx).to_bytes(4, "big")
        with gzip.open(os.path.join(a.dst, f"{split}-images-idx3-ubyte.gz"), "wb", compresslevel=1) as f:
            f.write(ih[:4] + n + ih[8:] + img)
        with gzip.open(os.path.join(a.dst, f"{split}-labels-idx1-ubyte.gz"), "wb", compresslevel=1) as f:
            f.write(lh[:4] + n + lab)
        print(f"{a.dst}: {split} {len(idx)} samples of classes {a.classes}")


if __name__ == "__main__":
    main()
