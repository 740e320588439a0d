#!/usr/bin/env python3
# Whether two checkpoints hold the same tensors byte for byte (arm64's against x86's, a resumed run's
# against an uninterrupted one's).
"""usage: same_checkpoint.py A.st B.st LABEL"""
import json, struct, sys


def load(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    h.pop("__metadata__", None)
    d = raw[8 + n:]
    return {k: d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items()}


a, b = load(sys.argv[1]), load(sys.argv[2])
diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
print(f"{sys.argv[3]}: {len(a)} tensors, " + ("byte-identical" if not diff else f"{len(diff)} differ: {diff[:4]}"))
sys.exit(1 if diff else 0)
