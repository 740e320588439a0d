#!/usr/bin/python3
"""PyTorch twin of `mandheling train`: the same model (python/mh_torch.py's twin of models/MODEL.mh, or a
reference zoo.py with --zoo), data, normalisation, batch,
SGD (momentum, weight decay), per-step cosine or step schedule and epochs, for side-by-side accuracy.

  /usr/bin/python3 scripts/train_torch.py --model lenet5 --epochs 5 [--json out.json]

Prints one line per epoch and a final summary; --json writes the same fields as `mandheling train --json`.
"""
import argparse, gzip, json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def load_idx(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    magic, = struct.unpack('>I', data[:4])
    ndim = magic & 0xff
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, stem):
    for name in (stem, stem + '.gz'):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit(f'{d}: {stem}[.gz] not found')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='lenet5')
    ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    ap.add_argument('--epochs', type=int, default=5)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--lr', type=float, default=0.05)
    ap.add_argument('--momentum', type=float, default=0.9)
    ap.add_argument('--wd', type=float, default=5e-4)
    ap.add_argument('--schedule', choices=['cosine', 'step', 'constant'], default='cosine')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--zoo', help='a directory with a reference zoo.py to build the model from (default: the '
                    "repository's PyTorch twin of models/MODEL.mh, python/mh_torch.py)")
    ap.add_argument('--json')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr = load_idx(find(a.data, 'train-images-idx3-ubyte')).astype(np.float32) / 255
    ytr = load_idx(find(a.data, 'train-labels-idx1-ubyte')).astype(np.int64)
    xte = load_idx(find(a.data, 't10k-images-idx3-ubyte')).astype(np.float32) / 255
    yte = load_idx(find(a.data, 't10k-labels-idx1-ubyte')).astype(np.int64)
    mean, std = float(xtr.mean()), float(xtr.std())  # the training set's statistics, as the C batcher
    xtr = torch.from_numpy((xtr - mean) / std).unsqueeze(1)
    xte = torch.from_numpy((xte - mean) / std).unsqueeze(1)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    if a.zoo:
        sys.path.insert(0, a.zoo)
        import zoo
        model = zoo.ZOO[a.model][0]()
    else:
        sys.path.insert(0, os.path.join(HERE, '..', 'python'))
        import mh_torch
        model = mh_torch.from_model_file(mh_torch.model_path(a.model))
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.wd)
    steps_per_epoch = math.ceil(len(xtr) / a.batch)
    total = steps_per_epoch * a.epochs
    step, t0 = 0, time.time()
    g = torch.Generator().manual_seed(a.seed)
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        lsum = 0.0
        for b in range(steps_per_epoch):
            if a.schedule == 'cosine':
                lr = 0.5 * a.lr * (1 + math.cos(math.pi * step / total))
            elif a.schedule == 'step':
                lr = a.lr * 0.1 ** (epoch // max(1, a.epochs // 3))
            else:
                lr = a.lr
            for pg in opt.param_groups:
                pg['lr'] = lr
            idx = perm[b * a.batch:(b + 1) * a.batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            lsum += loss.item()
            step += 1
        model.eval()
        with torch.no_grad():
            correct, tl = 0, 0.0
            for i in range(0, len(xte), 256):
                out = model(xte[i:i + 256])
                correct += (out.argmax(1) == yte[i:i + 256]).sum().item()
                tl += F.cross_entropy(out, yte[i:i + 256], reduction='sum').item()
        acc = correct / len(xte)
        print(f'epoch {epoch + 1}/{a.epochs}  loss {lsum / steps_per_epoch:.4f}  test accuracy {100 * acc:.2f}%  '
              f'({time.time() - t0:.0f} s)', flush=True)
    summary = dict(command='train', model=a.model, precision='fp32', framework=f'pytorch {torch.__version__}',
                   steps=step, epochs=a.epochs, batch=a.batch, threads=a.threads, seed=a.seed, lr=a.lr,
                   seconds=time.time() - t0, train_loss=lsum / steps_per_epoch, test_accuracy=acc,
                   test_loss=tl / len(xte))
    print(json.dumps(summary))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(summary, f)


if __name__ == '__main__':
    main()
