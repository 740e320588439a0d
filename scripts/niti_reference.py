#!/usr/bin/python3
"""An independent reimplementation of NITI's integer training step (Wang et al., TPDS 2022; the
reference code's ti_torch.py / ti_loss.py), written from the published algorithm with integer
arithmetic only, that pins the C `niti` algorithm bit for bit.

Run with Debian's python3-torch:

  /usr/bin/python3 scripts/niti_reference.py [--out tests/golden/niti.safetensors]

The net (MODEL below) has a padded conv, a max-pool, a conv and a residual add that both read the
max-pool (a fan-out: its error is the exponent-aligned sum of two), a strided conv, a flatten and a
linear layer, all with biases. Starting from random int8 parameters with chosen exponents, it trains STEPS steps
on one batch with mu = MU and exact rescaling, and stores:

  x (F32; its int8 form depends on the input's rounding rule), labels (I32)
  param.<i> (I8) and exp (I32 [n_params])   the initial parameters, registration order
  logits.<s> (I8) and logits_exp (I32 [STEPS])  the int8 logits of step s's forward
  lossgrad.<s> (I8)                         the integer softmax-CE gradient of step s
  final.<i> (I8)                            the parameters after STEPS steps

The rules, as docs/ARCHITECTURE.md states them for the C engine (where NITI's text leaves a choice):
- value = q * 2^e, q in [-127, 127]; range = bit length of max|x| (not ceil(log2)).
- after every GEMM: s = max(0, bitlen(max|acc|) - 7), and s = 1 becomes 2; q = PstoShift(acc, s)
  (truncating division; the discarded bits' upper half vs lower half, lower doubled for odd s).
- bias q_b * 2^e_b joins the int32 accumulator (exponent e_acc) as q_b << (e_b - e_acc), or
  rounded to nearest when e_b < e_acc.
- input: e = smallest integer with max|x| <= 127 * 2^e; q = round-half-away(x * 2^-e) in float32.
- loss gradient: NITI's TiLoss with int64 truncating division, then PstoShift by 4, exponent 0.
- update: b = bitlen(max|g32|); g = 0 if b = 0, g32 if b - mu < 1, else PstoShift(g32, b - mu)
  clipped; w = clip(w - g). The first layer propagates no error.
- max-pool backward routes to the first maximum of each window.
- residual add (forward, and the sum of two errors for a tensor with two readers): both operands
  aligned to the larger exponent by rounding to nearest, summed, and when a sum leaves [-127, 127]
  every sum is rounded to nearest by one more bit (exponent + 1). The add hands its error to both
  inputs unchanged.
GEMMs and convolutions run in float64, which is exact here (every sum stays far below 2^53).
"""
import argparse, math, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_golden import write_safetensors  # noqa: E402
from int8_reference import quantize  # noqa: E402

MODEL = """# niti reference net
input 1x16x16
conv    c1 out=4 k=3 pad=1
relu    r1
maxpool p1 k=2
conv    c1b out=4 k=3 pad=1
add     a1 in=c1b,p1
conv    c2 out=8 k=3 stride=2 pad=1
relu    r2
flatten f
linear  fc out=10
"""
BATCH, STEPS, MU, SEED = 8, 3, 4, 7
# exponents chosen so bias alignment runs both ways (e_b above and below the accumulator's)
EXPS = {'c1.weight': -8, 'c1.bias': -16, 'c1b.weight': -9, 'c1b.bias': -5, 'c2.weight': -9, 'c2.bias': -15,
        'fc.weight': -10, 'fc.bias': -6}
SHAPES = {'c1.weight': (4, 1, 3, 3), 'c1.bias': (4,), 'c1b.weight': (4, 4, 3, 3), 'c1b.bias': (4,),
          'c2.weight': (8, 4, 3, 3), 'c2.bias': (8,), 'fc.weight': (10, 128), 'fc.bias': (10,)}
NAMES = list(SHAPES)


def bitlen(t):
    return int(t.abs().max().item()).bit_length() if t.numel() else 0


def psto(x, s):
    """NITI PstoShift with truncating division, on an int64 tensor; no clipping."""
    if s <= 0:
        return x
    a = x.abs()
    q, r = a >> s, a & ((1 << s) - 1)
    h = s // 2
    hi, lo = r >> h, r & ((1 << h) - 1)
    if s % 2:
        lo = lo * 2
    return torch.sign(x) * (q + (hi > lo).long())


def nearest(x, s):
    if s <= 0:
        return x
    a = x.abs()
    return torch.sign(x) * ((a >> s) + ((a >> (s - 1)) & 1))


def clip8(x):
    return x.clamp(-127, 127)


def requant(acc):
    """int32 accumulator -> (int8 tensor, shift) by NITI's act_calc/err_calc rule."""
    s = max(0, bitlen(acc) - 7)
    if s == 1:
        s = 2
    return clip8(psto(acc, s)), s


def align(b, d):
    """bias addend: b * 2^d exactly (d >= 0) or rounded to nearest (d < 0)."""
    return b << d if d >= 0 else nearest(b, -d)


def int_add(a, ea, b, eb):
    """Exponent-aligned int8 addition -> (int8 tensor, exponent)."""
    e = max(ea, eb)
    v = nearest(a, min(e - ea, 31)) + nearest(b, min(e - eb, 31))
    if (v.abs() > 127).any():
        return nearest(v, 1), e + 1
    return v, e


def quantize_input(x):
    """The data enters as int8 rounded to nearest, ties away from zero, with float32 arithmetic:
    trunc(v + copysign(0.5, v)) of v = x * 2^-e (int8_reference.quantize)."""
    q, e = quantize(x.numpy())
    return torch.from_numpy(q), e


def conv(x, w, stride, pad):
    return F.conv2d(x.double(), w.double(), stride=stride, padding=pad).round().long()


def tdiv(a, b):
    """int64 division truncating toward zero (C semantics), elementwise."""
    return torch.div(a, b, rounding_mode='trunc')


def loss_grad(o, e, labels):
    """NITI's TiLoss on int8 logits o (n x k) with exponent e -> int8 error, exponent 0."""
    o = o.long()
    e = max(-24, min(40, e))
    if e > -7:
        s = tdiv(o * 47274, torch.tensor(2 ** 15))
        s = s * (2 ** e) if e >= 0 else tdiv(s, torch.tensor(2 ** -e))
        s = s - (s.max(dim=1, keepdim=True).values - 10)
        p = (2 ** s.clamp(min=0)) - 1
    else:
        p = 2 ** (1 - 2 * e) + o * 2 ** (1 - e) + o * o
    g = tdiv(p * 2 ** 11, p.sum(dim=1, keepdim=True))
    rows = torch.arange(o.shape[0])
    g[rows, labels] -= g.sum(dim=1)
    return clip8(psto(g, 4))


def maxpool_fwd(x):
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    idx = win.argmax(dim=-1)  # the first maximum in (kh, kw) scan order
    return win.max(dim=-1).values, idx


def maxpool_bwd(dy, idx, shape):
    n, c, h, w = shape
    g = torch.zeros(n, c, h // 2, w // 2, 4, dtype=torch.long)
    g.scatter_(-1, idx.unsqueeze(-1), dy.unsqueeze(-1))
    return g.reshape(n, c, h // 2, w // 2, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(shape)


def update(w, g32, mu):
    b = bitlen(g32)
    if b == 0:
        return w
    s = b - mu
    g = g32 if s < 1 else clip8(psto(g32, s))
    return clip8(w - g)


def step(P, x, labels):
    """One training step; returns the new params, the logits (q, e) and the loss gradient."""
    E = EXPS
    a0, e0 = quantize_input(x)
    # forward: conv -> relu -> pool -> (conv + pool) -> conv(s2) -> relu -> flatten -> linear
    acc = conv(a0, P['c1.weight'], 1, 1)
    ea = e0 + E['c1.weight']
    acc = acc + align(P['c1.bias'], E['c1.bias'] - ea).view(1, -1, 1, 1)
    y1, s = requant(acc); e1 = ea + s
    r1 = y1.clamp(min=0)
    p1, pidx = maxpool_fwd(r1)
    acc = conv(p1, P['c1b.weight'], 1, 1)
    ea = e1 + E['c1b.weight']
    acc = acc + align(P['c1b.bias'], E['c1b.bias'] - ea).view(1, -1, 1, 1)
    yb, s = requant(acc); eb = ea + s
    a1, e_a1 = int_add(yb, eb, p1, e1)  # p1 is read twice: by c1b and by this add
    acc = conv(a1, P['c2.weight'], 2, 1)
    ea = e_a1 + E['c2.weight']
    acc = acc + align(P['c2.bias'], E['c2.bias'] - ea).view(1, -1, 1, 1)
    y2, s = requant(acc); e2 = ea + s
    r2 = y2.clamp(min=0)
    f = r2.reshape(BATCH, -1)
    acc = (f.double() @ P['fc.weight'].double().t()).round().long()
    ea = e2 + E['fc.weight']
    acc = acc + align(P['fc.bias'], E['fc.bias'] - ea).view(1, -1)
    logits, s = requant(acc); el = ea + s
    # loss gradient (exponent 0)
    d = loss_grad(logits, el, labels)
    ed = 0
    G = {}
    # linear backward
    G['fc.weight'] = (d.double().t() @ f.double()).round().long()
    G['fc.bias'] = d.sum(dim=0)
    df, s = requant((d.double() @ P['fc.weight'].double()).round().long()); edf = ed + E['fc.weight'] + s
    dr2 = torch.where(r2 > 0, df.reshape(r2.shape), torch.zeros_like(r2))
    # conv2 backward: its input is the add's output
    G['c2.weight'] = torch.nn.grad.conv2d_weight(a1.double(), P['c2.weight'].shape, dr2.double(), stride=2,
                                                 padding=1).round().long()
    G['c2.bias'] = dr2.sum(dim=(0, 2, 3))
    da1, s = requant(torch.nn.grad.conv2d_input(a1.shape, P['c2.weight'].double(), dr2.double(), stride=2,
                                                padding=1).round().long())
    eda1 = edf + E['c2.weight'] + s
    # the add hands its error to both inputs; c1b's backward then adds its input error to p1's
    G['c1b.weight'] = torch.nn.grad.conv2d_weight(p1.double(), P['c1b.weight'].shape, da1.double(), stride=1,
                                                  padding=1).round().long()
    G['c1b.bias'] = da1.sum(dim=(0, 2, 3))
    dpb, s = requant(torch.nn.grad.conv2d_input(p1.shape, P['c1b.weight'].double(), da1.double(), stride=1,
                                                padding=1).round().long())
    dp1, edp1 = int_add(da1, eda1, dpb, eda1 + E['c1b.weight'] + s)
    dr1 = maxpool_bwd(dp1, pidx, r1.shape)
    dy1 = torch.where(r1 > 0, dr1, torch.zeros_like(dr1))
    # conv1 backward: weights only (the first layer propagates no error)
    G['c1.weight'] = torch.nn.grad.conv2d_weight(a0.double(), P['c1.weight'].shape, dy1.double(), stride=1,
                                                 padding=1).round().long()
    G['c1.bias'] = dy1.sum(dim=(0, 2, 3))
    newP = {k: update(P[k], G[k], MU) for k in NAMES}
    return newP, logits, el, d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'tests', 'golden',
                                                   'niti.safetensors'))
    args = ap.parse_args()
    g = torch.Generator().manual_seed(SEED)
    P = {k: torch.randint(-127, 128, SHAPES[k], generator=g).long() for k in NAMES}
    x = torch.randn((BATCH, 1, 16, 16), generator=g)  # not dyadic: the input's rounding mode matters
    labels = torch.randint(0, 10, (BATCH,), generator=g)
    tensors = [('x', x.numpy().astype(np.float32)), ('labels', labels.numpy().astype(np.int32))]
    tensors += [(f'param.{i}', P[k].numpy().astype(np.int8)) for i, k in enumerate(NAMES)]
    tensors += [('exp', np.array([EXPS[k] for k in NAMES], dtype=np.int32))]
    lexp = []
    for s in range(STEPS):
        P, logits, el, d = step(P, x, labels)
        tensors += [(f'logits.{s}', logits.numpy().astype(np.int8)), (f'lossgrad.{s}', d.numpy().astype(np.int8))]
        lexp.append(el)
    tensors += [('logits_exp', np.array(lexp, dtype=np.int32))]
    tensors += [(f'final.{i}', P[k].numpy().astype(np.int8)) for i, k in enumerate(NAMES)]
    meta = {'model_text': MODEL, 'steps': str(STEPS), 'mu': str(MU), 'batch': str(BATCH),
            'generator': 'scripts/niti_reference.py'}
    tensors.sort(key=lambda t: -t[1].dtype.itemsize)  # 4-byte tensors first: every one stays 4-byte aligned
    write_safetensors(args.out, tensors, meta)
    print(f'wrote {args.out}: {STEPS} niti steps, logits exponents {lexp}')


if __name__ == '__main__':
    main()
