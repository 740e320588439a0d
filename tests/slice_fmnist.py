"""Writes the first NTRAIN training and NTEST test samples of Fashion-MNIST (gzipped IDX) into DST
with their headers adjusted, for command-line tests that need real data but little time.
usage: python3 slice_fmnist.py SRC DST NTRAIN NTEST"""
import gzip, os, sys

src, dst, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dst)
for split, n in (("train", ntrain), ("t10k", ntest)):
    for kind, header, per in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
        name = "%s-%s-ubyte.gz" % (split, kind)
        with gzip.open(os.path.join(src, name), "rb") as f:
            raw = bytearray(f.read(header + n * per))
        if len(raw) != header + n * per:
            sys.exit("%s: too short" % name)
        raw[4:8] = n.to_bytes(4, "big")
        with gzip.open(os.path.join(dst, name), "wb", compresslevel=1) as f:
            f.write(bytes(raw))
