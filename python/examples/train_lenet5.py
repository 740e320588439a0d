#!/usr/bin/python3
"""Notebook-style: lenet5 on Fashion-MNIST from Python, its loss curve drawn.

  MANDHELING_LIB=build/libmandheling.so /usr/bin/python3 python/examples/train_lenet5.py [--out curve.png]"""
import argparse, gzip, os, sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mandheling  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
ap.add_argument("--train", type=int, default=10000, help="training images to use")
ap.add_argument("--epochs", type=int, default=2)
ap.add_argument("--precision", default="fp32")
ap.add_argument("--out", default="lenet5_curve.png")
a = ap.parse_args()


def idx(name, header):
    return np.frombuffer(gzip.open(os.path.join(a.data, name)).read()[header:], dtype=np.uint8)


# the data, normalised with the training images' statistics (as the command does)
xtr = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:a.train].astype(np.float32) / 255
ytr = idx("train-labels-idx1-ubyte.gz", 8)[:a.train].astype(np.int32)
xte = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
yte = idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int32)
mean, std = xtr.mean(), xtr.std()
xtr, xte = (xtr - mean) / std, (xte - mean) / std

print("Mandheling %d.%d.%d" % mandheling.version())
t = mandheling.Trainer("lenet5", precision=a.precision, batch=64, lr=0.05, schedule="constant")
rng = np.random.default_rng(1)
losses, accs = [], []
for epoch in range(a.epochs):
    order = rng.permutation(len(xtr))
    losses += t.fit(xtr[order], ytr[order])
    acc, loss = t.evaluate(xte, yte)
    accs.append(acc)
    print(f"epoch {epoch + 1}: test accuracy {100 * acc:.2f}%, loss {loss:.4f}")

import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(losses, lw=0.8, label="train loss per step")
ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.grid(alpha=0.3)
ax.set_title(f"lenet5 {a.precision}: test accuracy {100 * accs[-1]:.1f}% after {a.epochs} epochs")
ax.legend()
fig.tight_layout()
fig.savefig(a.out, dpi=100)
print(f"curve written to {a.out}")
