"""biaxial_cu.Model: configuration, parameters, backends, Adadelta state and checkpoints.

The numpy backend is the reference (backends/reference.py); the cuda backend, when present,
runs the same computation in kernels/. A checkpoint is one .npz of plain arrays (no pickle):
`param/<name>`, `adadelta/Eg/<name>`, `adadelta/Ex/<name>` and `meta`, UTF-8 JSON bytes with
the config, the step count and the random generator's state, so a resumed run continues
exactly as an uninterrupted one.
"""
import json
import logging
import numbers
import os
import tempfile
import zipfile

import numpy as np

from .backends import reference as ref
from .errors import CheckpointError
from .features import note_inputs

log = logging.getLogger("biaxial_cu")

N_NOTES = 78
N_FEATURES = 80
CHECKPOINT_FORMAT = "biaxial_cu.checkpoint"
CHECKPOINT_VERSION = 1
BACKENDS = ("auto", "numpy", "cuda")


def _sizes(name, sizes):
    sizes = tuple(sizes)
    if not sizes or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                            for s in sizes):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def param_shapes(t_layer_sizes, p_layer_sizes):
    """{name: shape} of every parameter, in API.md's names and layouts."""
    shapes = {}
    for stack, sizes, first_in in (("time", t_layer_sizes, N_FEATURES),
                                   ("pitch", p_layer_sizes, t_layer_sizes[-1] + 2)):
        inputs = (first_in,) + tuple(sizes[:-1])
        for k, (I, H) in enumerate(zip(inputs, sizes)):
            shapes[f"{stack}.{k}.W"] = (4 * H, I + H)
            shapes[f"{stack}.{k}.b"] = (4 * H,)
    shapes["out.W"] = (2, p_layer_sizes[-1])
    shapes["out.b"] = (2,)
    return shapes


def clip_segment_count(name):
    """Per-gate clipping: an LSTM tensor has 4 gate blocks, the output layer's are whole."""
    return 1 if name.startswith("out.") else 4


def cuda_unavailable_reason():
    """None when the cuda backend can run here, else why not."""
    try:
        from .backends import cuda
    except ImportError as e:
        return f"the cuda backend could not be imported ({e})"
    return cuda.cuda_unavailable_reason()


def _cuda_trains():
    from .backends import cuda

    return cuda.TRAINS


def _check_batch(batch):
    batch = np.asarray(batch)
    if batch.ndim != 4 or batch.shape[2:] != (N_NOTES, 2) or batch.shape[1] < 2 or batch.shape[0] < 1:
        raise ValueError(f"a batch must have shape (B, T, 78, 2) with B >= 1 and T >= 2, "
                         f"got {batch.shape}")
    if not np.isin(batch, (0, 1)).all():
        raise ValueError("a batch must hold only 0 and 1")
    return batch


class Model:
    """The biaxial RNN (MODEL_SPEC section 3) with a numpy or cuda backend."""

    def __init__(self, t_layer_sizes=(300, 300), p_layer_sizes=(100, 50), dropout=0.5,
                 cell_activation="identity", backend="auto", dtype="float32", seed=None):
        t_layer_sizes = _sizes("t_layer_sizes", t_layer_sizes)
        p_layer_sizes = _sizes("p_layer_sizes", p_layer_sizes)
        if not (isinstance(dropout, numbers.Real) and not isinstance(dropout, bool)
                and 0 <= dropout < 1):
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if cell_activation not in ref.CELL_ACTIVATIONS:
            raise ValueError(f"cell_activation must be one of {ref.CELL_ACTIVATIONS}, "
                             f"got {cell_activation!r}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.backend = self._choose_backend(backend, dtype)
        self.config = {"t_layer_sizes": list(t_layer_sizes), "p_layer_sizes": list(p_layer_sizes),
                       "dropout": float(dropout), "cell_activation": cell_activation,
                       "dtype": dtype}
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.dtype = np.dtype(dtype)
        shapes = param_shapes(t_layer_sizes, p_layer_sizes)
        params = {name: self._init_param(name, shape) for name, shape in shapes.items()}
        opt = {f"{kind}/{name}": np.zeros(shape, self.dtype)
               for kind in ("Eg", "Ex") for name, shape in shapes.items()}
        self._set_state(params, opt)

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _choose_backend(backend, dtype):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "numpy":
            return "numpy"
        reason = cuda_unavailable_reason()
        if backend == "cuda":
            if reason:
                raise RuntimeError(f"backend 'cuda' is not available: {reason}")
            if dtype != "float32":
                raise ValueError("the cuda backend computes in float32 only")
            return "cuda"
        if not reason and dtype != "float32":
            reason = "the cuda backend computes in float32 only"
        if not reason and not _cuda_trains():
            reason = "the cuda backend cannot train yet (no backward kernels)"
        chosen = "numpy" if reason else "cuda"
        log.info("backend 'auto' chose %s%s", chosen, f" ({reason})" if reason else "")
        return chosen

    def _init_param(self, name, shape):
        """The original's initialisation: N(0, 1) / out, out = H per gate block, 2 for out.*."""
        out = 2 if name.startswith("out.") else shape[0] // 4
        return (self.rng.standard_normal(shape) / out).astype(self.dtype)

    def _set_state(self, params, opt):
        """Hold parameters and optimiser state on the chosen backend."""
        if self.backend == "cuda":
            from .backends.cuda import CudaBackend

            self._impl = CudaBackend(params, opt, self.config)
            self.params, self._opt = self._impl.params, self._impl.opt
        else:
            self._impl = None
            self.params, self._opt = params, opt

    @property
    def t_layer_sizes(self):
        return tuple(self.config["t_layer_sizes"])

    @property
    def p_layer_sizes(self):
        return tuple(self.config["p_layer_sizes"])

    @property
    def dropout(self):
        return self.config["dropout"]

    @property
    def cell_activation(self):
        return self.config["cell_activation"]

    def parameters_finite(self):
        """False when any parameter holds NaN or Inf (one reduction on the device)."""
        if self._impl is not None:
            return self._impl.parameters_finite()
        return all(bool(np.isfinite(p).all()) for p in self.params.values())

    def parameter_count(self):
        return int(sum(np.prod(p.shape) for p in self.params.values()))

    def dropout_masks(self, B, T):
        """Fresh dropout masks for a (B, T, 78, 2) batch, drawn from model.rng.

        {"time.k": (B*78, H), "pitch.k": (B*(T-1), H)}: one mask per sequence row.
        """
        p = self.dropout
        masks = {f"time.{k}": ref.dropout_mask(self.rng, B * N_NOTES, H, p, self.dtype)
                 for k, H in enumerate(self.t_layer_sizes)}
        masks.update({f"pitch.{k}": ref.dropout_mask(self.rng, B * (T - 1), H, p, self.dtype)
                      for k, H in enumerate(self.p_layer_sizes)})
        return masks

    # ------------------------------------------------------------------ numpy forward/backward

    def _forward(self, batch, masks):
        """The whole forward pass (numpy). Returns loss and what backward needs."""
        P_ = self.params
        act = self.cell_activation
        B, T = batch.shape[:2]
        S = batch.astype(self.dtype)
        feats = np.stack([note_inputs(S[b, :-1], 0, dtype=self.dtype) for b in range(B)])
        x = ref.time_inputs(feats)  # (T-1, B*78, 80)
        caches = {}
        for k in range(len(self.t_layer_sizes)):
            h, caches[f"time.{k}"] = ref.lstm_layer_forward(x, P_[f"time.{k}.W"], P_[f"time.{k}.b"], act)
            x = h * masks[f"time.{k}"] if masks else h  # (T-1, B*78, H)
        targets = S[:, 1:]  # (B, T-1, 78, 2)
        x = ref.pitch_inputs(x, targets)  # (78, B*(T-1), Ht+2)
        for k in range(len(self.p_layer_sizes)):
            h, caches[f"pitch.{k}"] = ref.lstm_layer_forward(x, P_[f"pitch.{k}.W"], P_[f"pitch.{k}.b"], act)
            x = h * masks[f"pitch.{k}"] if masks else h  # (78, B*(T-1), H)
        y = ref.pitch_targets(targets)  # (78, B*(T-1), 2)
        P, loss = ref.output_loss_forward(x, P_["out.W"], P_["out.b"], y)
        return loss, (caches, x, P, y, B)

    def _backward(self, saved, masks):
        caches, x, P, y, B = saved
        P_ = self.params
        act = self.cell_activation
        grads = {}
        dlogits = ref.output_loss_backward(P, y)  # (78, R, 2)
        Hp = x.shape[-1]
        grads["out.W"] = dlogits.reshape(-1, 2).T @ x.reshape(-1, Hp)
        grads["out.b"] = dlogits.reshape(-1, 2).sum(axis=0)
        dx = dlogits @ P_["out.W"]  # (78, R, Hp)
        for k in reversed(range(len(self.p_layer_sizes))):
            dh = dx * masks[f"pitch.{k}"] if masks else dx
            dx, grads[f"pitch.{k}.W"], grads[f"pitch.{k}.b"] = ref.lstm_layer_backward(
                dh, caches[f"pitch.{k}"], P_[f"pitch.{k}.W"], act)
        Ht = self.t_layer_sizes[-1]
        dx = ref.pitch_to_time(dx[:, :, :Ht], B)  # (T-1, B*78, Ht)
        for k in reversed(range(len(self.t_layer_sizes))):
            dh = dx * masks[f"time.{k}"] if masks else dx
            dx, grads[f"time.{k}.W"], grads[f"time.{k}.b"] = ref.lstm_layer_backward(
                dh, caches[f"time.{k}"], P_[f"time.{k}.W"], act)
        return {name: grads[name].astype(self.dtype) for name in self.params}

    # ------------------------------------------------------------------ public API

    def loss(self, batch):
        """Summed NLL (MODEL_SPEC 4) of a (B, T, 78, 2) batch, no dropout, no update."""
        batch = _check_batch(batch)
        if self._impl is not None:
            return self._impl.loss(batch)
        return self._forward(batch, None)[0]

    def _masks_for(self, batch, masks):
        if masks is not None or self.dropout == 0:
            return masks
        B, T = batch.shape[:2]
        if self._impl is not None:  # drawn on the device, from a seed that model.rng gives
            return self._impl.dropout_masks(B, T, self.dropout, int(self.rng.integers(2**63)))
        return self.dropout_masks(B, T)

    def gradients(self, batch, masks=None):
        """(loss, {name: gradient}) with dropout when dropout > 0 (or the given masks)."""
        batch = _check_batch(batch)
        masks = self._masks_for(batch, masks)
        if self._impl is not None:  # gradient arrays are the backend's, reused by the next call
            loss, grads = self._impl.gradients(batch, masks)
            return float(loss), grads
        loss, saved = self._forward(batch, masks)
        return loss, self._backward(saved, masks)

    def train_step(self, batch, masks=None):
        """One Adadelta step (MODEL_SPEC 5); returns the loss of the forward pass it used."""
        if self._impl is not None:  # everything stays on the device; one sync for the loss
            batch = _check_batch(batch)
            if masks is None:  # masks drawn on the device from a seed
                seed = int(self.rng.integers(2**63)) if self.dropout > 0 else None
                loss = self._impl.train_step(batch, self.dropout, seed)
            else:
                loss, _ = self._impl.gradients(batch, masks)
                self._impl.adadelta()
            self.step += 1
            return float(loss)
        loss, grads = self.gradients(batch, masks)
        for name, w in self.params.items():
            ref.adadelta_update(w, grads[name], self._opt[f"Eg/{name}"], self._opt[f"Ex/{name}"],
                                clip_segment_count(name))
        self.step += 1
        return loss

    def _compose_device(self, seeds, steps, *, conservativity, adaptive, uniforms):
        """generate.compose's device path (cuda backend); arguments already checked there."""
        from .backends.cuda import DeviceGenerator
        from .generate import host_weights

        return DeviceGenerator(self._impl, host_weights(self)).compose(
            seeds, steps, conservativity, adaptive, uniforms)

    # ------------------------------------------------------------------ checkpoints

    def save(self, path):
        """Write a checkpoint atomically: a temporary file in the same folder, then rename."""
        path = os.fspath(path)
        meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": self.config,
                "step": self.step, "rng_state": self.rng.bit_generator.state, "backend": self.backend}
        arrays = {f"param/{k}": np.asarray(_to_host(v)) for k, v in self.params.items()}
        arrays.update({f"adadelta/{k}": np.asarray(_to_host(v)) for k, v in self._opt.items()})
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz.tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path, backend="auto"):
        """A Model from a checkpoint; CheckpointError saying why when it cannot be used."""
        arrays, meta = read_checkpoint(path)
        cfg = meta["config"]
        try:
            model = cls(cfg["t_layer_sizes"], cfg["p_layer_sizes"], cfg["dropout"],
                        cfg["cell_activation"], backend=backend, dtype=cfg["dtype"], seed=0)
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{path}: bad config in checkpoint ({e})") from None
        shapes = param_shapes(model.t_layer_sizes, model.p_layer_sizes)
        expected = {f"param/{n}" for n in shapes} | {f"adadelta/{k}/{n}" for k in ("Eg", "Ex") for n in shapes}
        found = set(arrays) - {"meta"}
        if found != expected:
            missing, extra = sorted(expected - found), sorted(found - expected)
            raise CheckpointError(f"{path}: arrays do not match the config (missing {missing[:5]}, "
                                  f"unexpected {extra[:5]})")
        for key in sorted(expected):
            name = key.split("/")[-1]
            if arrays[key].shape != shapes[name]:
                raise CheckpointError(f"{path}: {key} has shape {arrays[key].shape}, the config "
                                      f"needs {shapes[name]}")
            if not np.issubdtype(arrays[key].dtype, np.floating):
                raise CheckpointError(f"{path}: {key} has dtype {arrays[key].dtype}, not float")
        params = {n: arrays[f"param/{n}"].astype(model.dtype) for n in shapes}
        opt = {f"{k}/{n}": arrays[f"adadelta/{k}/{n}"].astype(model.dtype)
               for k in ("Eg", "Ex") for n in shapes}
        model._set_state(params, opt)
        model.step = int(meta["step"])
        try:
            model.rng.bit_generator.state = meta["rng_state"]
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: bad random generator state ({e})") from None
        return model


def _to_host(a):
    return a.get() if hasattr(a, "get") else a


def read_checkpoint(path):
    """({name: array}, meta dict) of a checkpoint file, or CheckpointError saying why."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable biaxial_cu checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(arrays, dict) or "meta" not in arrays:
        raise CheckpointError(f"{path}: not a biaxial_cu checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(arrays["meta"].astype(np.uint8).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable 'meta' entry ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a biaxial_cu checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')!r}; this biaxial_cu "
                              f"reads version {CHECKPOINT_VERSION}")
    for key in ("config", "step", "rng_state"):
        if key not in meta:
            raise CheckpointError(f"{path}: checkpoint meta lacks {key!r}")
    return arrays, meta
