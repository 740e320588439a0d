#!/usr/bin/python3
"""Generates the golden fixtures tests/golden/<case>.safetensors that pin the C engine to PyTorch.

Run with Debian's python3-torch (torch 1.13, numpy):

  /usr/bin/python3 scripts/gen_golden.py [--zoo path/to/zoo.py] [--out tests/golden] [cases...]

For each case (lenet5, cnn6, resblock, fanout), with torch.manual_seed fixed, in float32, batch 4, model
in train() mode, the fixture holds:

  x (F32 4xCxHxW), labels (I32 [4])
  param.<i>   every initial parameter, in model.parameters() order, PyTorch's shape
  logits      forward output (F32 [4,10]);  loss: F32 scalar (shape [])
  grad.<i>    every parameter gradient of that first forward/backward
  losses      the loss before each of 5 SGD steps (lr 0.05, momentum 0.9, wd 5e-4) on the same batch;
              losses[0] == loss
  final.<i>   the parameters after those 5 steps
  buf.<j>     BN running_mean/var after the 5 steps, model.buffers() order, num_batches_tracked skipped
  eval_logits the logits of x in eval() mode after the 5 steps (batch norm from its running statistics)

The fanout case (a tensor read by a conv, an add and a 1x1 conv, so its gradient sums three parts)
also pins the optimiser options and the learning-rate schedules against torch.optim:
  losses_nesterov, final_nesterov.<i>  5 steps from the same start with nesterov=True and a per-step
              CosineAnnealingLR(T_max=5) (lr 0.05 at step 0, 0 after the last)
  losses_adam, final_adam.<i>    5 steps of torch.optim.Adam(lr 0.01, weight_decay 5e-4) from the same start
  losses_adamw, final_adamw.<i>  5 steps of torch.optim.AdamW(lr 0.01, weight_decay 0.01) from the same start
  lr_step     StepLR(step_size=2, gamma=0.5) from lr 0.05: the rate of each of 7 epochs
  lr_cosine   CosineAnnealingLR(T_max=12) stepped once per step from lr 0.05: the rate at steps 0..12

Size: a fixture must stay under 2.5 MB (all of them under 6 MB). cnn6's fc1.weight alone is 401,408 floats
(1.6 MB), so for cnn6 that tensor's gradient and final value are subsampled: the stored tensor is the
1-D array flat[0::S] of the full tensor, and the metadata says so ("subsampled": "grad.<i>,final.<i>",
"subsample_stride": "S"). Everything else is stored in full.

The safetensors file is written here with json + struct (no safetensors package needed).
"""
import argparse, json, os, struct, sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CASES = ('lenet5', 'cnn6', 'resblock', 'fanout')
SEED = 1234
BATCH = 4
STEPS = 5
LR, MOMENTUM, WD = 0.05, 0.9, 5e-4
ADAM_LR, ADAMW_WD = 0.01, 0.01  # Adam/AdamW goldens (fanout): betas (0.9, 0.999), eps 1e-8 (PyTorch's defaults)
MAX_FILE_BYTES = 2_500_000
SUBSAMPLE_OVER = 200_000  # cnn6 only: tensors with more elements than this get grad/final subsampled
SUBSAMPLE_STRIDE = 61     # prime, coprime to the 3136 columns of fc1: the sample hits every row and column


def load_zoo(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('zoo', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class FanOut(nn.Module):
    """r1 has three readers (c2, the add a1, the 1x1 sc): its gradient is the sum of three. In the C
    graph sc comes after a1, so in backward sc writes r1's gradient first and the add and c2 add to it."""

    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv2d(3, 8, 3, padding=1)
        s.c2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        s.b2 = nn.BatchNorm2d(8)
        s.sc = nn.Conv2d(8, 8, 1, bias=False)
        s.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(s, x):
        r1 = F.relu(s.c1(x))
        a1 = s.b2(s.c2(r1)) + r1
        y = F.relu(a1 + s.sc(r1))
        return s.fc(torch.flatten(F.max_pool2d(y, 2), 1))


def build(zoo, case):
    if case == 'fanout':
        return FanOut(), (3, 8, 8)
    if case == 'resblock':
        return nn.Sequential(zoo.Basic(16, 32, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), (16, 8, 8)
    mk, shape = zoo.ZOO[case]
    return mk(), shape


def write_safetensors(path, tensors, meta):
    """tensors: list of (name, np.ndarray) in file order; meta: dict str->str."""
    dt = {np.dtype('float32'): 'F32', np.dtype('int32'): 'I32', np.dtype('int8'): 'I8', np.dtype('int64'): 'I64'}
    header, blobs, off = {}, [], 0
    for name, a in tensors:
        a = np.array(a, order="C", copy=True)  # (np.ascontiguousarray would turn a scalar into shape [1])
        b = a.astype(a.dtype.newbyteorder('<')).tobytes()
        # no padding between tensors: readers (ours too) reject bytes that belong to no tensor; with a
        # header padded to 8 bytes and only 4-byte types every tensor is 4-byte aligned anyway
        header[name] = {'dtype': dt[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header['__metadata__'] = meta
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((-len(h)) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def optimiser_goldens(model, params, params0, bufs0, x, labels):
    """Nesterov with a per-step cosine schedule from the initial state, Adam and AdamW, and two
    schedules' rates."""
    def run(name, opt, sched=None):
        """STEPS steps of opt from the initial state (parameters and buffers restored), the loss
        taken before each; their losses and final parameters as fixture tensors."""
        with torch.no_grad():
            for p, p0 in zip(params, params0):
                p.copy_(p0)
            for b, b0 in zip(model.buffers(), bufs0):
                b.copy_(b0)
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            l = F.cross_entropy(model(x), labels)
            l.backward()
            losses.append(l.item())
            opt.step()
            if sched is not None:
                sched.step()
        return [(f'losses_{name}', np.array(losses, dtype=np.float32))] + \
            [(f'final_{name}.{i}', f32(p)) for i, p in enumerate(params)]

    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WD, nesterov=True)
    out = run('nesterov', opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS))
    # Adam (weight decay as L2) and AdamW (decoupled) at a constant rate, from the same start
    out += run('adam', torch.optim.Adam(params, lr=ADAM_LR, weight_decay=WD))
    out += run('adamw', torch.optim.AdamW(params, lr=ADAM_LR, weight_decay=ADAMW_WD))

    def rates(make, n):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
        sched, r = make(opt), []
        for _ in range(n):
            r.append(opt.param_groups[0]['lr'])
            opt.step()
            sched.step()
        return np.array(r, dtype=np.float32)

    out.append(('lr_step', rates(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5), 7)))
    out.append(('lr_cosine', rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12), 13)))
    return out


def generate(zoo, case, out_dir):
    torch.manual_seed(SEED)
    model, shape = build(zoo, case)
    model = model.float().train()
    x = torch.randn(BATCH, *shape)
    labels = torch.randint(0, 10, (BATCH,))
    params = list(model.parameters())
    params0 = [p.detach().clone() for p in params]
    tensors = [('x', f32(x)), ('labels', labels.numpy().astype(np.int32))]
    tensors += [(f'param.{i}', f32(p)) for i, p in enumerate(params)]

    # forward, loss, backward of the initial model (this forward also moves the BN running stats,
    # exactly as step 0 below will: the buffers are restored before the SGD run)
    bufs0 = [b.detach().clone() for b in model.buffers()]
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    model.zero_grad()
    loss.backward()
    grads = [p.grad.detach().clone() for p in params]
    with torch.no_grad():
        for b, b0 in zip(model.buffers(), bufs0):
            b.copy_(b0)

    sub = case == 'cnn6'
    sampled = []

    def maybe_sample(name, i, t):
        a = f32(t)
        if sub and a.size > SUBSAMPLE_OVER:
            sampled.append(f'{name}.{i}')
            return a.reshape(-1)[::SUBSAMPLE_STRIDE].copy()
        return a

    tensors += [('logits', f32(logits)), ('loss', np.array(loss.item(), dtype=np.float32).reshape(()))]
    tensors += [(f'grad.{i}', maybe_sample('grad', i, g)) for i, g in enumerate(grads)]

    # 5 SGD steps on the same batch, from the same initial parameters (the backward above did not
    # change them); the loss is taken before each step
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WD)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        l = F.cross_entropy(model(x), labels)
        l.backward()
        if step == 0:  # the first step's forward/backward must reproduce the stored one bit for bit
            assert l.item() == loss.item(), (l.item(), loss.item())
            for g0, p in zip(grads, params):
                assert torch.equal(g0, p.grad)
        losses.append(l.item())
        opt.step()
    tensors += [('losses', np.array(losses, dtype=np.float32))]
    tensors += [(f'final.{i}', maybe_sample('final', i, p)) for i, p in enumerate(params)]
    bi = 0
    for name, b in model.named_buffers():
        if name.endswith('num_batches_tracked'):
            continue
        tensors.append((f'buf.{bi}', f32(b)))
        bi += 1
    model.eval()
    with torch.no_grad():
        tensors.append(('eval_logits', f32(model(x))))
    model.train()
    if case == 'fanout':
        tensors += optimiser_goldens(model, params, params0, bufs0, x, labels)

    meta = {'generator': 'scripts/gen_golden.py', 'torch': torch.__version__, 'numpy': np.__version__,
            'case': case, 'seed': str(SEED), 'batch': str(BATCH), 'steps': str(STEPS),
            'lr': repr(LR), 'momentum': repr(MOMENTUM), 'weight_decay': repr(WD),
            'n_params': str(len(params)), 'n_buffers': str(bi),
            'param_count': str(sum(p.numel() for p in params))}
    if sampled:
        meta['subsampled'] = ','.join(sampled)
        meta['subsample_stride'] = str(SUBSAMPLE_STRIDE)
    path = os.path.join(out_dir, f'{case}.safetensors')
    write_safetensors(path, tensors, meta)
    size = os.path.getsize(path)
    print(f'{path}: {size} bytes, {len(params)} params ({meta["param_count"]} floats), {bi} buffers, '
          f'loss {loss.item():.6f}, losses {" ".join(f"{v:.6f}" for v in losses)}'
          + (f', subsampled {meta["subsampled"]} every {SUBSAMPLE_STRIDE}' if sampled else ''))
    if size >= MAX_FILE_BYTES:
        raise SystemExit(f'{path}: {size} bytes, over the {MAX_FILE_BYTES} limit')
    return size


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--zoo', default=os.path.join(root, '..', 'shared', 'reference', 'zoo.py'),
                    help='path of reference zoo.py (default: ../shared/reference/zoo.py from the repo root)')
    ap.add_argument('--out', default=os.path.join(root, 'tests', 'golden'))
    ap.add_argument('cases', nargs='*', default=list(CASES))
    a = ap.parse_args()
    for c in a.cases:
        if c not in CASES:
            raise SystemExit(f'unknown case {c} (known: {", ".join(CASES)})')
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    zoo = load_zoo(a.zoo)
    total = sum(generate(zoo, c, a.out) for c in a.cases)
    print(f'total {total} bytes')


if __name__ == '__main__':
    main()
