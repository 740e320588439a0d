"""The Python package (python/mandheling) against the shared library: arrays in and out, the
parameters as a dict, averaging states, save/load, errors as MandhelingError with the library's
message. Run by tests/cli_python.sh: python_api.py SOURCE_DIR DATA_DIR TMP_DIR."""
import gzip, os, sys

import numpy as np

src, data, tmp = sys.argv[1:4]
sys.path.insert(0, os.path.join(src, "python"))
import mandheling  # noqa: E402

failed = passed = 0


def check(name, cond, detail=""):
    global failed, passed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + detail if detail else ""))


def raises(name, fn, needle):
    try:
        fn()
    except (mandheling.MandhelingError, ValueError) as e:
        check(name, needle in str(e), f"message '{e}' lacks '{needle}'")
        return
    check(name, False, "no error")


def idx(name, header):
    return np.frombuffer(gzip.open(os.path.join(data, name)).read()[header:], dtype=np.uint8)


x = (idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255 - 0.286) / 0.353
y = idx("train-labels-idx1-ubyte.gz", 8).astype(np.int32)
xt = (idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255 - 0.286) / 0.353
yt = idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int32)

check("version", mandheling.version()[:2] == (0, 2), str(mandheling.version()))
t = mandheling.Trainer("lenet5", batch=32, lr=0.05, schedule="constant", threads=1)
losses = t.fit(x, y, epochs=3)
check("fit: 3 epochs of 512 images in batches of 32 = 48 steps, the loss falls",
      len(losses) == 48 and np.mean(losses[-8:]) < np.mean(losses[:8]), f"{len(losses)} {losses[:2]} {losses[-2:]}")
acc, loss = t.evaluate(xt, yt)
check("evaluate on arrays: above chance", acc > 0.3, f"{acc}")
acc_dir, _ = t.evaluate(data)
check("evaluate on a directory's test split gives a fraction", 0 <= acc_dir <= 1)
z = t.predict(xt[:10])
check("predict: [10, 10] float32 logits", z.shape == (10, 10) and z.dtype == np.float32)
p = t.parameters()
check("parameters: names and shapes as in checkpoints",
      list(p)[:2] == ["conv1.weight", "conv1.bias"] and p["conv1.weight"].shape == (6, 1, 5, 5) and p["fc3.bias"].shape == (10,),
      str([(k, v.shape) for k, v in list(p.items())[:3]]))
u = mandheling.Trainer("lenet5", seed=9, batch=32, threads=1)
check("another seed predicts differently", not np.array_equal(u.predict(xt[:10]), z))
u.set_parameters(p)
check("set_parameters: then it predicts the same", np.array_equal(u.predict(xt[:10]), z))
a, b = t.state(), u.state()
avg = (a + 2 * b) / 3
u.set_state(avg)
check("state in and out (a weighted average)", np.array_equal(u.state(), avg.astype(np.float32)))
path = os.path.join(tmp, "py.st")
t.save(path)
r = mandheling.Trainer.load(path)
check("save / load: the same predictions", np.array_equal(r.predict(xt[:10]), z))
t.set_lr(0)
before = t.state()
t.step(x[:32], y[:32])
check("set_lr(0): a step keeps the weights", np.array_equal(t.state()[:61706], before[:61706]))
raises("an unknown model", lambda: mandheling.Trainer("lenet7"), "neither a zoo model")
raises("an unknown config key", lambda: mandheling.Trainer("lenet5", learning_rate=0.1), "unknown key 'learning_rate'")
raises("a bad config value", lambda: mandheling.Trainer("lenet5", lr="fast"), "config lr")
raises("niti on a batch-norm model", lambda: mandheling.Trainer("cnn6", precision="niti"), "batchnorm")
raises("a missing parameter", lambda: u.set_parameters({"conv1.weight": p["conv1.weight"]}), "'conv1.bias' is missing")
raises("a wrong shape", lambda: u.set_parameters({**p, "fc3.bias": np.zeros(3)}), "'fc3.bias' has shape")
raises("labels that do not match the samples", lambda: t.step(x[:4], y[:3]), "4 samples but 3 labels")
raises("a label out of range", lambda: t.step(x[:2], np.array([0, 12])), "outside the model's 10 classes")
raises("a missing checkpoint", lambda: mandheling.Trainer.load(os.path.join(tmp, "none.st")), "none.st")
for tr in (t, u, r):
    tr.close()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
