"""biaxial_cu.Model: configuration, parameter names, the chosen backend and checkpoints.

The backend object computes: backends.numpy_backend.NumpyBackend (the reference) or
backends.cuda.CudaBackend, with the same methods (loss, activations, gradients, train_step,
dropout_masks, compose, parameters_finite) and the same state (params, opt: {name: view} of flat
buffers). Model checks arguments, draws what needs the model's generator and delegates; it
never branches on which backend it holds.
"""
import logging
import numbers
import os

import numpy as np

from .backends.cuda import CudaBackend, cuda_unavailable_reason
from .backends.numpy_backend import NumpyBackend
from .checkpoint import check_state_arrays, read_checkpoint, state_arrays, write_checkpoint
from .common import CELL_ACTIVATIONS, METER_MODES, N_NOTES, summarize, to_host
from .errors import CheckpointError
from .params import OPTIMISER_STATES, check_sizes, init_params, mask_shapes, masks_of_rows, param_shapes

log = logging.getLogger("biaxial_cu")

BACKENDS = ("auto", "numpy", "cuda")
BACKEND_CLASSES = {"numpy": NumpyBackend, "cuda": CudaBackend}
# BIAXIAL_CU_TF32=1 (or 0) overrides the tf32 argument of Model and Model.load.
TF32_ENV = "BIAXIAL_CU_TF32"


def tf32_choice(tf32):
    """The tf32 argument, unless the environment variable overrides it."""
    if not isinstance(tf32, (bool, np.bool_)):
        raise ValueError(f"tf32 must be True or False, got {tf32!r}")
    override = os.environ.get(TF32_ENV)
    return override == "1" if override in ("0", "1") else bool(tf32)


def choose_backend(backend, dtype):
    """"numpy" or "cuda" for a backend argument; RuntimeError when cuda is asked for and unusable."""
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
    chosen = "numpy" if reason else "cuda"
    log.info("backend 'auto' chose %s%s", chosen, f" ({reason})" if reason else "")
    return chosen


def check_batch(batch):
    batch = np.asarray(batch)
    if batch.ndim != 4 or batch.shape[2:] != (N_NOTES, 2) or batch.shape[1] < 2 or batch.shape[0] < 1:
        raise ValueError(f"a batch must have shape (B, T, 78, 2) with B >= 1 and T >= 2, "
                         f"got {batch.shape}")
    if not np.isin(batch, (0, 1)).all():
        raise ValueError("a batch must hold only 0 and 1")
    return batch


def check_positions(positions, batch):
    """positions as a (B, T) int32 array of bar positions (>= 0) for a (B, T, 78, 2) batch, or
    None (each step's index in its segment); ValueError otherwise."""
    if positions is None:
        return None
    P = np.asarray(positions)
    if P.shape != batch.shape[:2]:
        raise ValueError(f"positions must have shape {batch.shape[:2]} (one bar position per piece and "
                         f"step of the batch), got {P.shape}")
    if P.dtype.kind not in "iu":
        raise ValueError(f"positions must be integers, got dtype {P.dtype}")
    if P.size and (P.min() < 0 or P.max() > np.iinfo(np.int32).max):
        raise ValueError("positions must be >= 0 (steps since the bar line) and fit in int32")
    return P.astype(np.int32, copy=False)


def check_masks(masks, config, B, T):
    """masks as given, when it is a dict of exactly the layers of config with the shapes of a
    (B, T, 78, 2) batch (params.mask_shapes), holding finite real numbers; ValueError naming
    what is missing, extra or wrong."""
    if not isinstance(masks, dict):
        raise ValueError(f"masks must be None or a dict of layer name -> mask array (as "
                         f"dropout_masks returns), got {type(masks).__name__}")
    want = mask_shapes(config, B, T)
    missing, extra = [k for k in want if k not in masks], sorted(map(str, set(masks) - set(want)))
    if missing or extra:
        parts = ([f"missing {summarize(missing)}"] if missing else []) + \
                ([f"unexpected {summarize(extra)}"] if extra else [])
        hint = " (masks={} does not mean no dropout: pass None, or use a model with dropout=0.0)" \
            if not masks else ""
        raise ValueError(f"masks must have exactly the model's layers {list(want)}: "
                         f"{'; '.join(parts)}{hint}")
    wrong = [f"{k} {tuple(np.shape(masks[k]))} (needs {shape})" for k, shape in want.items()
             if tuple(np.shape(masks[k])) != shape]
    if wrong:
        raise ValueError(f"masks of the wrong shape for a batch of B={B}, T={T}: {summarize(wrong)}")
    for k in want:
        _check_mask_values(k, masks[k])
    return masks


def _check_mask_values(name, mask):
    """A mask holds finite real numbers (bool, int or float; a host or device array), else
    ValueError naming the layer: NaN or inf would make every parameter non-finite."""
    dtype = getattr(mask, "dtype", None)
    values = mask if dtype is not None else np.asarray(mask)
    dtype = np.dtype(values.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"masks[{name!r}] must hold real numbers (as dropout_masks gives), got "
                         f"dtype {dtype}")
    if dtype.kind == "f" and not np.isfinite(to_host(values)).all():
        raise ValueError(f"masks[{name!r}] holds NaN or infinite values; a mask must be finite")


class Model:
    """The biaxial RNN (MODEL_SPEC section 3) on the numpy or the cuda backend.

    tf32: on the cuda backend, training's matrix products on TF32 tensor cores (compute
    capability 8.0+); recorded in the config. The numpy reference always computes in full
    precision and ignores it. meters: how the music it learns from was read (common.METER_MODES):
    "original" (4/4 beats from each segment's start) or "all" (beats from bar lines, any meter);
    recorded in the config, so that training further, evaluating and composing read music the
    same way.
    """

    def __init__(self, t_layer_sizes=(300, 300), p_layer_sizes=(100, 50), dropout=0.5,
                 cell_activation="identity", backend="auto", dtype="float32", seed=None, tf32=False,
                 meters="original"):
        t_layer_sizes = check_sizes("t_layer_sizes", t_layer_sizes)
        p_layer_sizes = check_sizes("p_layer_sizes", p_layer_sizes)
        if not (isinstance(dropout, numbers.Real) and not isinstance(dropout, bool)
                and 0 <= dropout < 1):
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if cell_activation not in CELL_ACTIVATIONS:
            raise ValueError(f"cell_activation must be one of {CELL_ACTIVATIONS}, "
                             f"got {cell_activation!r}")
        if meters not in METER_MODES:
            raise ValueError(f"meters must be one of {METER_MODES}, got {meters!r}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.backend = choose_backend(backend, dtype)
        self.config = {"t_layer_sizes": list(t_layer_sizes), "p_layer_sizes": list(p_layer_sizes),
                       "dropout": float(dropout), "cell_activation": cell_activation,
                       "dtype": dtype, "tf32": tf32_choice(tf32), "meters": meters}
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.dtype = np.dtype(dtype)
        shapes = param_shapes(t_layer_sizes, p_layer_sizes)
        params = init_params(shapes, self.rng, self.dtype)
        opt = {f"{kind}/{name}": np.zeros(shape, self.dtype) for kind in OPTIMISER_STATES for name, shape in shapes.items()}
        self._set_state(params, opt)

    def _set_state(self, params, opt):
        """Hand parameters and optimiser state (host arrays) to a new backend object."""
        self.engine = BACKEND_CLASSES[self.backend](self.config, params, opt)
        self.params, self.opt = self.engine.params, self.engine.opt

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

    @property
    def tf32(self):
        return self.config["tf32"]

    @property
    def meters(self):
        return self.config["meters"]

    def parameters_finite(self):
        """False when any parameter holds NaN or Inf (one reduction on the backend)."""
        return self.engine.parameters_finite()

    def parameter_count(self):
        return int(sum(np.prod(p.shape) for p in self.params.values()))

    def dropout_masks(self, B, T):
        """Fresh dropout masks for a (B, T, 78, 2) batch, drawn with model.rng (the backend's way):
        {"time.k": (B*78, H), "pitch.k": (B*(T-1), H)}, one mask row per sequence row."""
        return self.engine.dropout_masks(B, T, self.dropout, self.rng)

    def _masks_for(self, batch, masks):
        """masks=None: fresh masks when dropout > 0, none when dropout == 0 (to train without
        dropout, use a model with dropout=0.0). A dict: exactly the model's layers ("time.k",
        "pitch.k") with mask_shapes' shapes for this batch, else ValueError (an empty or partial
        dict is never read as "no dropout")."""
        if masks is None:
            return None if self.dropout == 0 else self.dropout_masks(*batch.shape[:2])
        return check_masks(masks, self.config, *batch.shape[:2])

    # ------------------------------------------------------------------ public API

    def loss(self, batch, positions=None):
        """Summed NLL (MODEL_SPEC 4) of a (B, T, 78, 2) batch, no dropout, no update.
        positions: (B, T) bar positions of the steps (the beat inputs, MODEL_SPEC 2; as
        data.sample_batch gives them with meters "all"); None: each step's index in its segment,
        the original's rule."""
        batch = check_batch(batch)
        return self.engine.loss(batch, positions=check_positions(positions, batch))

    def forward(self, batch, positions=None):
        """(loss, activations) of a (B, T, 78, 2) batch without dropout: activations holds
        "time.k" and "pitch.k", every layer's hidden output (B, T-1, 78, H) (step t of a time
        layer, note n of a pitch layer), and "probabilities" (B, T-1, 78, 2), the model's
        (P(play), P(articulate | play)) for step t + 1. Host arrays. positions: as for loss."""
        batch = check_batch(batch)
        return self.engine.activations(batch, positions=check_positions(positions, batch))

    def gradients(self, batch, masks=None, positions=None):
        """(loss, {name: gradient}) with dropout when dropout > 0 (or the given masks). On the
        cuda backend the gradient arrays are the backend's, reused by the next call."""
        batch = check_batch(batch)
        return self.engine.gradients(batch, self._masks_for(batch, masks), positions=check_positions(positions, batch))

    def train_step(self, batch, masks=None, *, positions=None, ranks=None):
        """One Adadelta step (MODEL_SPEC 5); returns the loss of the forward pass it used.
        positions: as for loss.

        ranks (distributed.MpiWorld): data-parallel, every rank calling with the same global
        batch and model state: this rank computes the gradients of its share of the rows with
        its rows of the global masks, ranks.reduce sums gradients and losses over the ranks, and
        every rank applies the same update. Returns the whole batch's loss."""
        batch = check_batch(batch)
        positions = check_positions(positions, batch)
        masks = self._masks_for(batch, masks)
        reduce = None
        if ranks is not None:
            start, stop = ranks.share(batch.shape[0])
            masks = masks_of_rows(masks, batch.shape[1], start, stop) if masks else masks
            batch, reduce = batch[start:stop], ranks.reduce
            positions = None if positions is None else positions[start:stop]
        loss = self.engine.train_step(batch, masks, reduce, positions=positions)
        self.step += 1
        return loss

    def gradient_sq_norms(self):
        """(n_seg,) float64: the squared norm of each clipping segment (gate block, MODEL_SPEC 5)
        of the last train_step's gradients, before clipping (board.gradient_norms reads them)."""
        return self.engine.gradient_sq_norms()

    # ------------------------------------------------------------------ checkpoints

    def save(self, path):
        """Write a checkpoint atomically (checkpoint.py): parameters, optimiser state, config,
        step count and the generator's state."""
        meta = {"config": self.config, "step": self.step, "rng_state": self.rng.bit_generator.state,
                "backend": self.backend}
        write_checkpoint(path, {k: to_host(v) for k, v in self.params.items()},
                         {k: to_host(v) for k, v in self.opt.items()}, meta)

    @classmethod
    def load(cls, path, backend="auto", tf32=None):
        """A Model from a checkpoint; CheckpointError saying why when it cannot be used.
        tf32: None keeps the checkpoint's choice."""
        if tf32 is not None:
            tf32_choice(tf32)  # a bad argument is the caller's error, not the checkpoint's
        arrays, meta = read_checkpoint(path)
        cfg = meta["config"]
        try:  # the arrays are checked against the config first: a config is never trusted with memory
            shapes = param_shapes(check_sizes("t_layer_sizes", cfg["t_layer_sizes"]),
                                  check_sizes("p_layer_sizes", cfg["p_layer_sizes"]))
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{path}: bad config in checkpoint ({e})") from None
        check_state_arrays(path, arrays, shapes)
        try:
            model = cls(cfg["t_layer_sizes"], cfg["p_layer_sizes"], cfg["dropout"], cfg["cell_activation"],
                        backend=backend, dtype=cfg["dtype"], seed=0,
                        tf32=cfg.get("tf32", False) if tf32 is None else tf32,
                        meters=cfg.get("meters", "original"))
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{path}: bad config in checkpoint ({e})") from None
        model._set_state(*state_arrays(path, arrays, shapes, model.dtype))
        model.step = int(meta["step"])
        try:
            model.rng.bit_generator.state = meta["rng_state"]
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: bad random generator state ({e})") from None
        return model
