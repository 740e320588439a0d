"""Mandheling from Python: ctypes over the shared library (libmandheling.so) with numpy arrays.

    import mandheling
    t = mandheling.Trainer("lenet5", precision="int8", epochs=1, batch=64)
    losses = t.fit(x_train, y_train, epochs=1)      # float32 [n, 1, 28, 28], int labels [n]
    acc, loss = t.evaluate(x_test, y_test)          # or t.evaluate("/usr/share/datasets/fashion-mnist")
    logits = t.predict(x)                  # x: float32 [n, C, H, W], normalised as in training
    params = t.parameters()                # {"conv1.weight": ndarray, ...} (copies)
    t.set_parameters(params)               # e.g. after federated averaging
    t.save("run.st"); t2 = mandheling.Trainer.load("run.st")

Errors raise MandhelingError with the library's message. The library is found through
MANDHELING_LIB, next to this package in a build or install tree, or on the loader's path."""
import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ["Trainer", "MandhelingError", "library", "version"]


class MandhelingError(RuntimeError):
    """A call into the library failed; the message is the library's (mh_last_error)."""


def _find_library():
    env = os.environ.get("MANDHELING_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for rel in ("../../build/libmandheling.so", "../../lib/libmandheling.so", "../../../lib/libmandheling.so",
                "../../../../lib/libmandheling.so"):
        p = os.path.normpath(os.path.join(here, rel))
        if os.path.exists(p):
            return p
    found = ctypes.util.find_library("mandheling")
    if not found:
        raise MandhelingError("libmandheling.so not found: build it (cmake), install it, or set MANDHELING_LIB")
    return found


_lib = None


def library():
    """The loaded shared library (ctypes.CDLL), with the signatures this module uses."""
    global _lib
    if _lib is not None:
        return _lib
    L = ctypes.CDLL(_find_library())
    P, I, S, F, D, Z = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_float, ctypes.c_double, ctypes.c_size_t
    fp = ctypes.POINTER(ctypes.c_float)
    sigs = {
        "mh_version": (I, []), "mh_last_error": (S, []),
        "mh_model_create": (I, [ctypes.POINTER(P), S, ctypes.c_uint64]), "mh_model_free": (None, [P]),
        "mh_model_classes": (I, [P]), "mh_model_n_params": (I, [P]), "mh_model_name": (S, [P]),
        "mh_model_param_info": (I, [P, I, ctypes.POINTER(S), ctypes.POINTER(I), ctypes.POINTER(ctypes.c_int64)]),
        "mh_model_param_count": (ctypes.c_int64, [P]), "mh_model_load_weights": (I, [P, S]),
        "mh_model_set_classes": (I, [ctypes.POINTER(P), I, ctypes.c_uint64]),
        "mh_checkpoint_model": (I, [S, ctypes.c_uint64, ctypes.POINTER(P)]),
        "mh_checkpoint_precision": (I, [S, S, Z]),
        "mh_train_config_new": (P, []), "mh_train_config_set": (I, [P, S, S]), "mh_train_config_free": (None, [P]),
        "mh_trainer_create": (I, [ctypes.POINTER(P), P, P]), "mh_trainer_free": (None, [P]),
        "mh_trainer_step": (I, [P, fp, ctypes.POINTER(ctypes.c_int32), I, fp]),
        "mh_trainer_predict": (I, [P, fp, I, fp]),
        "mh_trainer_evaluate_batch": (I, [P, fp, ctypes.POINTER(ctypes.c_int32), I, ctypes.POINTER(ctypes.c_long),
                                          ctypes.POINTER(D)]),
        "mh_evaluate": (I, [P, S, ctypes.POINTER(D), ctypes.POINTER(D)]),
        "mh_trainer_save": (I, [P, S]), "mh_trainer_load": (I, [P, S]),
        "mh_trainer_set_length": (I, [P, I, ctypes.c_long]),
        "mh_trainer_state_floats": (Z, [P]), "mh_trainer_get_state": (I, [P, fp, Z]),
        "mh_trainer_set_state": (I, [P, fp, Z]), "mh_trainer_set_lr": (I, [P, F]),
        "mh_trainer_request_stop": (None, [P]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(L, name)
        f.restype, f.argtypes = res, args
    _lib = L
    return L


def version():
    """The library's version as (major, minor, patch)."""
    v = library().mh_version()
    return v // 10000, v // 100 % 100, v % 100


def _check(status):
    if status != 0:
        msg = library().mh_last_error()
        raise MandhelingError(msg.decode() if msg else f"status {status}")


class Trainer:
    """A model and its trainer. model: a zoo name or a model file; config keys as mh_train_config's
    fields (precision, backend, epochs, batch, lr, momentum, weight_decay, optimizer, schedule,
    freeze, train_only, threads, seed, ...)."""

    def __init__(self, model="lenet5", seed=1, _model_ptr=None, **config):
        L = library()
        self._m, self._t = ctypes.c_void_p(), ctypes.c_void_p()
        if _model_ptr is not None:
            self._m = _model_ptr
        else:
            _check(L.mh_model_create(ctypes.byref(self._m), model.encode(), seed))
        cfg = L.mh_train_config_new()
        if not cfg:
            raise MandhelingError("out of memory")
        try:
            config.setdefault("seed", seed)
            for k, v in config.items():
                _check(L.mh_train_config_set(cfg, k.encode(), str(int(v) if isinstance(v, bool) else v).encode()))
            self.batch = int(config.get("batch", 64))
            _check(L.mh_trainer_create(ctypes.byref(self._t), self._m, cfg))
        except Exception:
            L.mh_model_free(self._m)
            self._m = ctypes.c_void_p()
            raise
        finally:
            L.mh_train_config_free(cfg)

    def close(self):
        L = library()
        if self._t:
            L.mh_trainer_free(self._t)
        if self._m:
            L.mh_model_free(self._m)
        self._t, self._m = ctypes.c_void_p(), ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def classes(self):
        return library().mh_model_classes(self._m)

    @staticmethod
    def _f32(x):
        return np.ascontiguousarray(x, dtype=np.float32)

    def step(self, x, y):
        """One training step on a batch: x float32 [n, C, H, W], y int labels [n]. Returns the loss."""
        x, y = self._f32(x), np.ascontiguousarray(y, dtype=np.int32)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{x.shape[0]} samples but {y.shape[0]} labels")
        loss = ctypes.c_float()
        fp = ctypes.POINTER(ctypes.c_float)
        _check(library().mh_trainer_step(self._t, x.ctypes.data_as(fp), y.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                                         x.shape[0], ctypes.byref(loss)))
        return loss.value

    def fit(self, x, y, epochs=1, batch=None, callback=None):
        """Trains on arrays (x, y) for `epochs` passes in order, in batches (shuffle them yourself;
        for a data directory, `mandheling train` runs the library's own loop). callback(step, loss)
        after every step may return False to stop. Returns the losses."""
        b = batch or self.batch
        losses = []
        for _ in range(epochs):
            for i in range(0, len(x), b):
                losses.append(self.step(x[i:i + b], y[i:i + b]))
                if callback is not None and callback(len(losses), losses[-1]) is False:
                    return losses
        return losses

    def predict(self, x):
        """Evaluation-mode logits [n, classes] of x (float32 [n, C, H, W], normalised as in training)."""
        x = self._f32(x)
        out = np.empty((x.shape[0], self.classes), dtype=np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        _check(library().mh_trainer_predict(self._t, x.ctypes.data_as(fp), x.shape[0], out.ctypes.data_as(fp)))
        return out

    def evaluate(self, x, y=None, batch=None):
        """(accuracy, mean loss) on arrays (x, y), or on a data directory's test split (x a path)."""
        L = library()
        if isinstance(x, (str, os.PathLike)):
            acc, loss = ctypes.c_double(), ctypes.c_double()
            _check(L.mh_evaluate(self._t, os.fsencode(x), ctypes.byref(acc), ctypes.byref(loss)))
            return acc.value, loss.value
        x, y = self._f32(x), np.ascontiguousarray(y, dtype=np.int32)
        b, correct, lsum = batch or self.batch, ctypes.c_long(), ctypes.c_double()
        fp = ctypes.POINTER(ctypes.c_float)
        for i in range(0, len(x), b):
            xb, yb = np.ascontiguousarray(x[i:i + b]), np.ascontiguousarray(y[i:i + b])
            _check(L.mh_trainer_evaluate_batch(self._t, xb.ctypes.data_as(fp), yb.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                                               xb.shape[0], ctypes.byref(correct), ctypes.byref(lsum)))
        return correct.value / len(x), lsum.value / len(x)

    def _shapes(self):
        L, out = library(), []
        for i in range(L.mh_model_n_params(self._m)):
            name, nd, shape = ctypes.c_char_p(), ctypes.c_int(), (ctypes.c_int64 * 4)()
            _check(L.mh_model_param_info(self._m, i, ctypes.byref(name), ctypes.byref(nd), shape))
            out.append((name.value.decode(), tuple(shape[:nd.value])))
        return out

    def state(self):
        """Every parameter then every batch-norm statistic, as one float32 array (for averaging)."""
        L = library()
        n = L.mh_trainer_state_floats(self._t)
        s = np.empty(n, dtype=np.float32)
        _check(L.mh_trainer_get_state(self._t, s.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n))
        return s

    def set_state(self, s):
        s = self._f32(s).ravel()
        _check(library().mh_trainer_set_state(self._t, s.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), s.size))

    def parameters(self):
        """The parameters as {name: float32 array} (copies; names as in checkpoints and PyTorch)."""
        s, out, off = self.state(), {}, 0
        for name, shape in self._shapes():
            n = int(np.prod(shape))
            out[name] = s[off:off + n].reshape(shape).copy()
            off += n
        return out

    def set_parameters(self, params):
        """Sets every parameter from {name: array} (all names, their shapes); statistics unchanged."""
        s, off = self.state(), 0
        for name, shape in self._shapes():
            n = int(np.prod(shape))
            if name not in params:
                raise MandhelingError(f"set_parameters: '{name}' is missing")
            a = np.asarray(params[name], dtype=np.float32)
            if a.shape != shape:
                raise MandhelingError(f"set_parameters: '{name}' has shape {a.shape}, the model needs {shape}")
            s[off:off + n] = a.ravel()
            off += n
        self.set_state(s)

    def set_lr(self, lr):
        _check(library().mh_trainer_set_lr(self._t, float(lr)))

    def save(self, path):
        _check(library().mh_trainer_save(self._t, os.fsencode(path)))

    @classmethod
    def load(cls, path, **config):
        """The trainer a checkpoint holds (its model, precision, weights and state)."""
        L = library()
        prec = ctypes.create_string_buffer(16)
        _check(L.mh_checkpoint_precision(os.fsencode(path), prec, 16))
        m = ctypes.c_void_p()
        _check(L.mh_checkpoint_model(os.fsencode(path), 1, ctypes.byref(m)))
        config.setdefault("precision", prec.value.decode())
        t = cls(_model_ptr=m, **config)
        _check(L.mh_trainer_load(t._t, os.fsencode(path)))
        return t
