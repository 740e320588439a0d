#!/usr/bin/python3
"""The PyTorch twin of Mandheling's models: builds a torch.nn.Module from a model file (the .mh
text format, docs/MODEL_FORMAT.md) whose state_dict names equal Mandheling's parameter and buffer
names (conv1.weight, conv1_bn.running_mean, ...), and reads and writes weights as safetensors.

  import mh_torch
  net = mh_torch.from_checkpoint('run.st')           # the checkpoint's model with its weights
  net = mh_torch.from_model_file('models/cnn6.mh')   # fresh weights (PyTorch's default init)
  mh_torch.save_weights(net, 'pretrained.safetensors')  # for mandheling train --init

Command line (for scripts and tests):
  mh_torch.py logits CKPT_OR_WEIGHTS [--model FILE] --x X.f32 --n N --out LOGITS.f32
      eval-mode logits of N samples (raw float32, the model's input shape) under those weights
  mh_torch.py bench [--threads T] [--batch B] [--iters N] [MODEL ...]
      median time of a training step (SGD lr 0.01, momentum 0.9, wd 5e-4) on random data, the
      speed peer of `mandheling bench`; MODEL is a zoo name (models/NAME.mh) or a model file
  mh_torch.py params [MODEL ...]    parameter counts

safetensors files are read and written with json + struct (no safetensors package needed)."""
import json
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {'F32': (torch.float32, 4), 'F64': (torch.float64, 8), 'I64': (torch.int64, 8), 'I32': (torch.int32, 4),
          'I8': (torch.int8, 1), 'U8': (torch.uint8, 1), 'F16': (torch.float16, 2), 'BF16': (torch.bfloat16, 2)}


def read_safetensors(path):
    """(tensors by name, metadata) of a safetensors file."""
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, v in header.items():
        dt, size = DTYPES[v['dtype']]
        a, b = v['data_offsets']
        buf = bytearray(data[a:b])
        t = torch.frombuffer(buf, dtype=dt) if b > a else torch.empty(0, dtype=dt)
        out[name] = t.reshape(v['shape']).clone()
    return out, meta


def write_safetensors(path, tensors, meta=None):
    """Writes a dict of tensors (float32 and int64 kept as they are) as safetensors."""
    names = {torch.float32: 'F32', torch.int64: 'I64', torch.int32: 'I32', torch.int8: 'I8', torch.float64: 'F64'}
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = t.numpy().tobytes()
        header[k] = {'dtype': names[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if meta:
        header['__metadata__'] = {str(k): str(v) for k, v in meta.items()}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def parse_model(text):
    """The model file's input shape and its layers: (op, name, keys, inputs) in file order."""
    shape, layers, names = None, [], ['input']
    for ln, line in enumerate(text.split('\n'), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        f = line.split()
        if f[0] == 'input':
            shape = tuple(int(v) for v in f[1].split('x'))
            continue
        op, rest = f[0], f[1:]
        name = rest[0] if rest and '=' not in rest[0] else f'{op}{len(layers) + 1}'
        if rest and '=' not in rest[0]:
            rest = rest[1:]
        keys = dict(kv.split('=', 1) for kv in rest)
        inputs = keys.pop('in').split(',') if 'in' in keys else [names[-1]]
        layers.append((op, name, keys, inputs))
        names.append(name)
    if shape is None:
        raise ValueError('model text has no input line')
    return shape, layers


def _flag(v):
    return v in ('true', '1')


class MhNet(nn.Module):
    """A model file as a module. Each layer with parameters is a submodule at its dotted name, so
    state_dict() keys are Mandheling's names."""

    def __init__(self, text):
        super().__init__()
        self.text = text
        self.in_shape, self.layers = parse_model(text)
        shapes = {'input': self.in_shape}
        for op, name, k, ins in self.layers:
            c, h, w = shapes[ins[0]]
            mod = None
            if op == 'conv':
                o, ks, st, pd, g = int(k['out']), int(k['k']), int(k.get('stride', 1)), int(k.get('pad', 0)), int(k.get('groups', 1))
                mod = nn.Conv2d(c, o, ks, st, pd, groups=g, bias=_flag(k.get('bias', 'true')))
                shapes[name] = (o, (h + 2 * pd - ks) // st + 1, (w + 2 * pd - ks) // st + 1)
            elif op == 'linear':
                mod = nn.Linear(c * h * w, int(k['out']), bias=_flag(k.get('bias', 'true')))
                shapes[name] = (int(k['out']), 1, 1)
            elif op == 'batchnorm':
                mod = nn.BatchNorm2d(c, eps=float(k.get('eps', 1e-5)), momentum=float(k.get('momentum', 0.1)))
                shapes[name] = (c, h, w)
            elif op in ('maxpool', 'avgpool'):
                ks, st, pd = int(k['k']), int(k.get('stride', k['k'])), int(k.get('pad', 0))
                shapes[name] = (c, (h + 2 * pd - ks) // st + 1, (w + 2 * pd - ks) // st + 1)
            elif op == 'gap':
                shapes[name] = (c, 1, 1)
            elif op == 'flatten':
                shapes[name] = (c * h * w, 1, 1)
            elif op in ('relu', 'relu6', 'add'):
                shapes[name] = (c, h, w)
            else:
                raise ValueError(f'layer {name}: op {op} has no PyTorch form here')
            if mod is not None:
                self._place(name, mod)

    def _place(self, name, mod):
        parent, parts = self, name.split('.')
        for p in parts[:-1]:
            if not hasattr(parent, p):
                parent.add_module(p, nn.Module())
            parent = getattr(parent, p)
        parent.add_module(parts[-1], mod)

    def _get(self, name):
        m = self
        for p in name.split('.'):
            m = getattr(m, p)
        return m

    def forward(self, x):
        v = {'input': x}
        for op, name, k, ins in self.layers:
            a = v[ins[0]]
            if op in ('conv', 'batchnorm'):
                y = self._get(name)(a)
            elif op == 'linear':
                y = self._get(name)(a.flatten(1)).reshape(a.shape[0], -1, 1, 1)
            elif op == 'relu':
                y = F.relu(a)
            elif op == 'relu6':
                y = F.relu6(a)
            elif op == 'maxpool':
                y = F.max_pool2d(a, int(k['k']), int(k.get('stride', k['k'])), int(k.get('pad', 0)))
            elif op == 'avgpool':
                y = F.avg_pool2d(a, int(k['k']), int(k.get('stride', k['k'])), int(k.get('pad', 0)))
            elif op == 'gap':
                y = a.mean((2, 3), keepdim=True)
            elif op == 'flatten':
                y = a.reshape(a.shape[0], -1, 1, 1)
            elif op == 'add':
                y = a + v[ins[1]]
            v[name] = y
        return v[self.layers[-1][1]].flatten(1)


def from_model_file(path):
    with open(path) as f:
        return MhNet(f.read())


def load_weights(net, path):
    """Loads a Mandheling checkpoint's (or a weights file's) parameters and batch-norm statistics.
    Optimizer and integer state in the file are skipped; num_batches_tracked keeps its value."""
    tensors, _ = read_safetensors(path)
    sd = net.state_dict()
    want = {k: v for k, v in tensors.items() if k in sd}
    missing = [k for k in sd if k not in want and not k.endswith('num_batches_tracked')]
    if missing:
        raise KeyError(f'{path}: lacks {", ".join(missing[:5])}')
    net.load_state_dict(want, strict=False)
    return net


def from_checkpoint(path, model_file=None):
    """The model a checkpoint carries (or model_file's), with the checkpoint's weights."""
    _, meta = read_safetensors(path)
    if model_file:
        net = from_model_file(model_file)
    elif 'model_text' in meta:
        net = MhNet(meta['model_text'])
    else:
        raise ValueError(f'{path}: no model_text in its metadata; give the model file')
    return load_weights(net, path)


def save_weights(net, path):
    """net's state_dict as safetensors, loadable with mandheling train|eval --init."""
    write_safetensors(path, dict(net.state_dict()), {'format': 'pt'})


ZOO = ('lenet5', 'cnn6', 'cnn6-nobn', 'vgg11', 'resnet18', 'mobilenetv2')


def model_path(name):
    """A zoo name's model file in the repository (models/NAME.mh), or the path given."""
    import os
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models', name + '.mh')
    return here if name in ZOO else name


def bench(argv):
    import argparse, time
    ap = argparse.ArgumentParser(prog='mh_torch.py bench')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--iters', type=int, default=10)
    ap.add_argument('models', nargs='*', default=list(ZOO))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for name in a.models:
        m = from_model_file(model_path(name)).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x, y = torch.randn(a.batch, *m.in_shape), torch.randint(0, 10, (a.batch,))

        def step():
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
        for _ in range(2):
            step()
        ts = []
        for _ in range(a.iters):
            t = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t)
        ts.sort()
        n = sum(p.numel() for p in m.parameters())
        print(f"{name}\tparams={n}\tbatch={a.batch}\tthreads={a.threads}\tmedian_ms={1e3 * ts[len(ts) // 2]:.1f}"
              f"\tmin_ms={1e3 * ts[0]:.1f}", flush=True)
    return 0


def main(argv):
    if len(argv) < 2 or argv[1] in ('-h', '--help'):
        print(__doc__)
        return 0 if len(argv) > 1 else 2
    if argv[1] == 'logits':
        import argparse
        ap = argparse.ArgumentParser(prog='mh_torch.py logits')
        ap.add_argument('weights')
        ap.add_argument('--model')
        ap.add_argument('--x', required=True)
        ap.add_argument('--n', type=int, required=True)
        ap.add_argument('--out', required=True)
        a = ap.parse_args(argv[2:])
        net = from_checkpoint(a.weights, a.model).eval()
        x = torch.frombuffer(bytearray(open(a.x, 'rb').read()), dtype=torch.float32).reshape(a.n, *net.in_shape)
        with torch.no_grad():
            y = net(x).contiguous()
        open(a.out, 'wb').write(y.numpy().tobytes())
        return 0
    if argv[1] == 'bench':
        return bench(argv[2:])
    if argv[1] == 'params':
        for name in argv[2:] or ZOO:
            print(f"{name}\t{sum(p.numel() for p in from_model_file(model_path(name)).parameters())}")
        return 0
    print(f'unknown command {argv[1]}', file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
