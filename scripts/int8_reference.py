#!/usr/bin/python3
"""An independent reimplementation of the `int8` (mixed-precision) training step, written from its
rules with numpy float32 arithmetic and exact integer convolutions, that pins the C engine's int8
forward and backward bit for bit: quantisation exponents and rounding modes, the stochastic-rounding
key (seed, step, node, element) and its hash, the int8 GEMMs and their return to FP32, the byte masks
of ReLU/ReLU6, max-pool positions, a gradient shared by two consumers.

Run with Debian's python3-torch:

  /usr/bin/python3 scripts/int8_reference.py [--out tests/golden/int8.safetensors]

The net (MODEL below) has a padded conv, ReLU, a 2x2 max-pool, a grouped conv, ReLU6, a strided
depthwise conv, a 1x1 conv and a residual add that both read the depthwise conv (a fan-out), a
flatten and two linear layers, all with biases. From float parameters, it runs one training-mode forward (logits) and, for each
(seed, step) case, the backward from a fixed dyadic dL/dlogits (so the softmax's libm differences
stay out of the comparison), and stores:

  x (F32), dlogits (F32)           the batch and the loss gradient fed to backward
  param.<i> (F32)                  the parameters, registration order
  logits (F32)                     the forward's output
  cases (I64 [n, 2])               (seed, step) of each backward
  grad.<c>.<i> (F32)               every parameter gradient of case c

and, for a second net with batch norm (BN_MODEL: 1x1 conv, batch norm, ReLU, linear), whose FP32
statistics make bit-exactness a matter of summation order, the same in float64 under "bn.": x,
dlogits, param.<i>, logits, grad.<i> (one case). The int8 part of batch norm is its rule: x-hat =
(x - mean) / sqrt(var + eps) is saved as int8 with one exponent for the tensor (nearest), and
backward reads x-hat from there. The data is chosen so that no x-hat and no input of the linear
layer lies within 1e-3 of a rounding boundary, so float32 noise flips no int8 value and the C
engine must agree to float32 precision (the test's tolerances say how closely).

The rules (docs/ARCHITECTURE.md, "Integer arithmetic and the int8 algorithm"):
- a tensor's exponent e is the smallest integer with max|x| <= 127 * 2^e (0 for all zeros);
- inputs and weights round to nearest, ties away from zero: trunc(v + copysign(0.5, v)) in float32,
  v = x * 2^-e; clipped to [-127, 127];
- a conv/linear layer's output gradient rounds stochastically: floor(v + u), u = (r >> 8) * 2^-24,
  r = hash32(key ^ hash32(i)) for element i of the NCHW tensor, key = the upper 32 bits of the
  splitmix64 chain over (seed, stream 4, step, node index); hash32 is Wellons' lowbias32;
- GEMM results are exact int32 sums, returned to FP32 as float(acc) * 2^(e_a + e_b), plus the
  FP32 bias; bias gradients are FP32 sums of dL/dy; backward reuses forward's int8 input and weights;
- ReLU passes the gradient where 0 < x, ReLU6 where 0 < x < 6; max-pool routes it to the first
  maximum of each window in scan order; the first layer computes no input gradient; a tensor read
  by two layers gets the sum of their gradients.
Every FP32 operation below is one IEEE float32 operation, as in the C code; the convolutions are
summed in float64, exact at these sizes.
"""
import argparse, math, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_golden import write_safetensors  # noqa: E402

MODEL = """# int8 reference net
input 3x16x16
conv    c1 out=8 k=3 pad=1
relu    r1
maxpool p1 k=2
conv    c2 out=8 k=3 pad=1 groups=2
relu6   r2
conv    dw out=8 k=3 stride=2 pad=1 groups=8
conv    c3 out=8 k=1
add     a1 in=c3,dw
flatten f
linear  fc1 out=16
relu    r3
linear  fc2 out=10
"""
# node indices in MODEL (the input is node 0): they key stochastic rounding
NODE = {'c1': 1, 'r1': 2, 'p1': 3, 'c2': 4, 'r2': 5, 'dw': 6, 'c3': 7, 'a1': 8, 'f': 9, 'fc1': 10, 'r3': 11, 'fc2': 12}
SHAPES = {'c1.weight': (8, 3, 3, 3), 'c1.bias': (8,), 'c2.weight': (8, 4, 3, 3), 'c2.bias': (8,),
          'dw.weight': (8, 1, 3, 3), 'dw.bias': (8,), 'c3.weight': (8, 8, 1, 1), 'c3.bias': (8,),
          'fc1.weight': (16, 128), 'fc1.bias': (16,), 'fc2.weight': (10, 16), 'fc2.bias': (10,)}
NAMES = list(SHAPES)
BATCH, SEED = 8, 11
CASES = [(5, 0), (5, 3), (6, 3)]  # (seed, step): the step and the seed each change every rounding key
M64, M32 = (1 << 64) - 1, (1 << 32) - 1
f32 = np.float32


# ---- the counter-based generator and the rounding hash (src/core/rng.h, src/quant/qformat.h) ----
def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def rng_key(seed, stream, a, b):
    k = mix64(seed ^ 0x6A09E667F3BCC909)
    k = mix64(k ^ stream)
    k = mix64(k ^ a)
    return mix64(k ^ b)


def stoch_key(seed, step, node):
    return rng_key(seed, 4, step, node) >> 32


def hash32(x):
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


# ---- float <-> int8 with power-of-two exponents ----
def exp_for_max(m):
    """The smallest e with m <= 127 * 2^e (0 for m = 0)."""
    if not m > 0:
        return 0
    e = math.ceil(math.log2(m / 127))
    while m > 127 * 2.0 ** e:
        e += 1
    while m <= 127 * 2.0 ** (e - 1):
        e -= 1
    return e


def quantize(x, key=None):
    """x (float32 array) -> (int8 values as int64, e); nearest when key is None, else stochastic."""
    e = exp_for_max(float(np.abs(x).max()))
    v = (x * f32(2.0 ** -e)).astype(f32)  # a power of two: exact
    if key is None:
        t = np.trunc((v + np.where(v >= 0, f32(0.5), f32(-0.5))).astype(f32))
    else:
        idx = np.arange(x.size, dtype=np.uint64).astype(np.uint32).reshape(x.shape)
        r = hash32(np.uint32(key) ^ hash32(idx))
        u = (r >> np.uint32(8)).astype(f32) * f32(2.0 ** -24)
        t = np.floor((v + u).astype(f32))
    return np.clip(t, -127, 127).astype(np.int64), e


def to_f32(acc, e):
    """An exact int32 result back to FP32: float(acc) * 2^e, two float32 operations."""
    return (np.asarray(acc).astype(f32) * f32(2.0 ** e)).astype(f32)


def conv_int(x, w, stride, pad, groups):
    return F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), stride=stride, padding=pad,
                    groups=groups).round().long().numpy()


def conv_grad_w(x, wshape, dy, stride, pad, groups):
    return torch.nn.grad.conv2d_weight(torch.from_numpy(x).double(), wshape, torch.from_numpy(dy).double(),
                                       stride=stride, padding=pad, groups=groups).round().long().numpy()


def conv_grad_x(xshape, w, dy, stride, pad, groups):
    return torch.nn.grad.conv2d_input(xshape, torch.from_numpy(w).double(), torch.from_numpy(dy).double(),
                                      stride=stride, padding=pad, groups=groups).round().long().numpy()


# ---- layers: forward returns what backward needs ----
def conv_fwd(x, w, b, stride, pad, groups):
    xq, ex = quantize(x)
    wq, ew = quantize(w)
    y = (to_f32(conv_int(xq, wq, stride, pad, groups), ex + ew) + b.reshape(1, -1, 1, 1)).astype(f32)
    return y, (xq, ex, wq, ew, x.shape, stride, pad, groups)


def conv_bwd(dy, saved, key, need_dx):
    xq, ex, wq, ew, xshape, stride, pad, groups = saved
    dyq, ey = quantize(dy, key)
    dw = to_f32(conv_grad_w(xq, wq.shape, dyq, stride, pad, groups), ey + ex)
    db = dy.astype(np.float64).sum(axis=(0, 2, 3)).astype(f32)
    dx = to_f32(conv_grad_x(xshape, wq, dyq, stride, pad, groups), ew + ey) if need_dx else None
    return dw, db, dx


def linear_fwd(x, w, b):
    xq, ex = quantize(x)
    wq, ew = quantize(w)
    y = (to_f32(xq @ wq.T, ex + ew) + b.reshape(1, -1)).astype(f32)
    return y, (xq, ex, wq, ew)


def linear_bwd(dy, saved, key):
    xq, ex, wq, ew = saved
    dyq, ey = quantize(dy, key)
    return to_f32(dyq.T @ xq, ey + ex), dy.astype(np.float64).sum(axis=0).astype(f32), to_f32(dyq @ wq, ey + ew)


def act_fwd(x, top):
    y = np.minimum(np.maximum(x, f32(0)), f32(top)).astype(f32)
    return y, (x > 0) & (x < top)


def maxpool_fwd(x):
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    idx = win.argmax(axis=-1)  # the first maximum in (kh, kw) scan order
    return np.take_along_axis(win, idx[..., None], axis=-1)[..., 0], idx


def maxpool_bwd(dy, idx, shape):
    n, c, h, w = shape
    g = np.zeros((n, c, h // 2, w // 2, 4), dtype=f32)
    np.put_along_axis(g, idx[..., None], dy[..., None], axis=-1)
    return g.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def forward(P, x):
    y1, s1 = conv_fwd(x, P['c1.weight'], P['c1.bias'], 1, 1, 1)
    r1, m1 = act_fwd(y1, np.inf)
    p1, pidx = maxpool_fwd(r1)
    y2, s2 = conv_fwd(p1, P['c2.weight'], P['c2.bias'], 1, 1, 2)
    r2, m2 = act_fwd(y2, 6)
    yd, sd = conv_fwd(r2, P['dw.weight'], P['dw.bias'], 2, 1, 8)
    y3, s3 = conv_fwd(yd, P['c3.weight'], P['c3.bias'], 1, 0, 1)
    a1 = (y3 + yd).astype(f32)
    f = a1.reshape(BATCH, -1)
    h, s4 = linear_fwd(f, P['fc1.weight'], P['fc1.bias'])
    r3, m3 = act_fwd(h, np.inf)
    z, s5 = linear_fwd(r3, P['fc2.weight'], P['fc2.bias'])
    return z, (s1, m1, r1.shape, pidx, s2, m2, sd, s3, a1.shape, s4, m3, s5)


def backward(saved, dz, seed, step):
    s1, m1, r1shape, pidx, s2, m2, sd, s3, a1shape, s4, m3, s5 = saved
    key = lambda name: stoch_key(seed, step, NODE[name])  # noqa: E731
    G = {}
    G['fc2.weight'], G['fc2.bias'], dr3 = linear_bwd(dz, s5, key('fc2'))
    dh = np.where(m3, dr3, f32(0)).astype(f32)
    G['fc1.weight'], G['fc1.bias'], df = linear_bwd(dh, s4, key('fc1'))
    da1 = df.reshape(a1shape)
    # the add hands its gradient to both inputs; dw's other reader (c3) adds its own to it
    G['c3.weight'], G['c3.bias'], ddw_c3 = conv_bwd(da1, s3, key('c3'), True)
    ddw = (da1 + ddw_c3).astype(f32)
    G['dw.weight'], G['dw.bias'], dr2 = conv_bwd(ddw, sd, key('dw'), True)
    dy2 = np.where(m2, dr2, f32(0)).astype(f32)
    G['c2.weight'], G['c2.bias'], dp1 = conv_bwd(dy2, s2, key('c2'), True)
    dr1 = maxpool_bwd(dp1, pidx, r1shape)
    dy1 = np.where(m1, dr1, f32(0)).astype(f32)
    G['c1.weight'], G['c1.bias'], _ = conv_bwd(dy1, s1, key('c1'), False)
    return G


BN_MODEL = """# int8 reference net with batch norm
input 4x4x4
conv      c1 out=6 k=1 bias=false
batchnorm b1
relu      r1
flatten   f
linear    fc out=10
"""
BN_NODE = {'c1': 1, 'b1': 2, 'r1': 3, 'f': 4, 'fc': 5}
BN_SHAPES = {'c1.weight': (6, 4, 1, 1), 'b1.weight': (6,), 'b1.bias': (6,), 'fc.weight': (10, 96),
             'fc.bias': (10,)}
BN_EPS, BN_CASE = 1e-5, (9, 2)


def margin(v):
    """Distance of v (float64) from the nearest rounding boundary (k + 0.5) of round-half-away."""
    return np.abs(np.abs(v) - np.floor(np.abs(v)) - 0.5).min()


def bn_net(P, x, dz, seed, step):
    """The BN net in float64 with the int8 rules; returns logits, grads and the rounding margins."""
    xq, ex = quantize(x)
    wq, ew = quantize(P['c1.weight'])
    y1 = conv_int(xq, wq, 1, 0, 1) * 2.0 ** (ex + ew)
    mean, var = y1.mean(axis=(0, 2, 3), keepdims=True), y1.var(axis=(0, 2, 3), keepdims=True)
    invstd = 1 / np.sqrt(var + BN_EPS)
    xhat = (y1 - mean) * invstd
    eh = exp_for_max(float(np.abs(xhat).max()))
    hq = np.clip(np.sign(xhat) * np.floor(np.abs(xhat) * 2.0 ** -eh + 0.5), -127, 127) * 2.0 ** eh
    g, b = P['b1.weight'].astype(np.float64).reshape(1, -1, 1, 1), P['b1.bias'].astype(np.float64).reshape(1, -1, 1, 1)
    r = np.maximum(g * xhat + b, 0)
    f = r.reshape(x.shape[0], -1)
    fq, ef = quantize(f.astype(f32))
    wfq, ewf = quantize(P['fc.weight'])
    z = (fq @ wfq.T) * 2.0 ** (ef + ewf) + P['fc.bias'].astype(np.float64)
    margins = (margin(xhat * 2.0 ** -eh), margin(f * 2.0 ** -ef))
    G = {}
    dyq, ey = quantize(dz, stoch_key(seed, step, BN_NODE['fc']))
    G['fc.weight'], G['fc.bias'] = (dyq.T @ fq) * 2.0 ** (ey + ef), dz.astype(np.float64).sum(axis=0)
    df = (dyq @ wfq) * 2.0 ** (ey + ewf)
    dy = np.where(r > 0, df.reshape(r.shape), 0)
    M = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dbeta, dgamma = dy.sum(axis=(0, 2, 3)), (dy * hq).sum(axis=(0, 2, 3))
    G['b1.weight'], G['b1.bias'] = dgamma, dbeta
    dy1 = (g * invstd / M * (M * dy - dbeta.reshape(1, -1, 1, 1) - hq * dgamma.reshape(1, -1, 1, 1))).astype(f32)
    d1q, e1 = quantize(dy1, stoch_key(seed, step, BN_NODE['c1']))
    G['c1.weight'] = conv_grad_w(xq, wq.shape, d1q, 1, 0, 1) * 2.0 ** (e1 + ex)
    return z, G, margins


def bn_tensors(g):
    """The BN part of the fixture: a draw whose int8 roundings all have a margin of 1e-3 or more."""
    for _ in range(100):
        P = {k: (torch.rand(BN_SHAPES[k], generator=g) * 2 - 1).numpy().astype(f32) for k in BN_SHAPES}
        P['b1.weight'] = (P['b1.weight'] + 1.5).astype(f32)
        x = torch.randn((BATCH, 4, 4, 4), generator=g).numpy().astype(f32)
        dz = (torch.randint(-96, 97, (BATCH, 10), generator=g).double() / 1024).numpy().astype(f32)
        z, G, margins = bn_net(P, x, dz, *BN_CASE)
        if min(margins) >= 1e-3:
            break
    else:
        raise SystemExit('no draw with rounding margins of 1e-3 in 100 tries')
    out = [('bn.x', x), ('bn.dlogits', dz), ('bn.logits', z.astype(f32))]
    out += [(f'bn.param.{i}', P[k]) for i, k in enumerate(BN_SHAPES)]
    out += [(f'bn.grad.{i}', G[k].astype(f32)) for i, k in enumerate(BN_SHAPES)]
    out += [('bn.case', np.array(BN_CASE, dtype=np.int64))]
    return out, margins


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'tests', 'golden',
                                                   'int8.safetensors'))
    args = ap.parse_args()
    g = torch.Generator().manual_seed(SEED)
    P = {k: (torch.rand(SHAPES[k], generator=g) * 2 - 1).mul(0.4).numpy().astype(f32) for k in NAMES}
    x = torch.randn((BATCH, 3, 16, 16), generator=g).numpy().astype(f32)
    dz = (torch.randint(-96, 97, (BATCH, 10), generator=g).double() / 1024).numpy().astype(f32)  # dyadic
    z, saved = forward(P, x)
    tensors = [('x', x), ('dlogits', dz), ('logits', z)]
    tensors += [(f'param.{i}', P[k]) for i, k in enumerate(NAMES)]
    tensors += [('cases', np.array(CASES, dtype=np.int64))]
    for c, (seed, step) in enumerate(CASES):
        G = backward(saved, dz, seed, step)
        tensors += [(f'grad.{c}.{i}', G[k].astype(f32)) for i, k in enumerate(NAMES)]
    bn, margins = bn_tensors(g)
    tensors += bn
    meta = {'model_text': MODEL, 'bn_model_text': BN_MODEL, 'batch': str(BATCH), 'generator': 'scripts/int8_reference.py',
            'torch': torch.__version__, 'numpy': np.__version__}
    tensors.sort(key=lambda t: -t[1].dtype.itemsize)  # 8-byte tensors first: every one stays aligned
    write_safetensors(args.out, tensors, meta)
    print(f'wrote {args.out}: logits max {np.abs(z).max():.3f}, {len(CASES)} backward cases; '
          f'batch-norm net rounding margins {margins[0]:.2e}, {margins[1]:.2e}')


if __name__ == '__main__':
    main()
