"""Parameter layout: names and shapes (API.md), the original's initialisation, the clipping
segments, the flat buffers both backends keep parameters in, and the split, transposed layout
generation reads (HostWeights). Below every backend and above nothing but common."""
from dataclasses import dataclass

import numpy as np

from .common import CELL_ACTIVATIONS, N_FEATURES, N_NOTES, to_host

OPTIMISER_STATES = ("Eg", "Ex")  # Adadelta's running averages of g^2 and of update^2 (MODEL_SPEC 5)


def check_sizes(name, sizes):
    """sizes as a tuple of positive ints, or ValueError naming the argument."""
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {sizes!r}") from None
    if not sizes or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                            for s in sizes):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def param_shapes(t_layer_sizes, p_layer_sizes):
    """{name: shape} of every parameter, in API.md's names, layouts and order (the flat order)."""
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


def mask_shapes(config, B, T):
    """{layer: (rows, H)} of a (B, T, 78, 2) batch's dropout masks: one mask row per sequence row
    (MODEL_SPEC 3), time layers then pitch layers (the order of a flat mask buffer)."""
    shapes = {f"time.{k}": (B * N_NOTES, H) for k, H in enumerate(config["t_layer_sizes"])}
    shapes.update({f"pitch.{k}": (B * (T - 1), H) for k, H in enumerate(config["p_layer_sizes"])})
    return shapes


def masks_of_rows(masks, T, start, stop):
    """The masks of batch rows [start, stop) of a (B, T, 78, 2) batch's masks (views): a time
    layer's rows are b*78 + n, a pitch layer's b*(T-1) + t (mask_shapes)."""
    per_row = {"time": N_NOTES, "pitch": T - 1}
    return {name: m[start * per_row[name.split(".")[0]]:stop * per_row[name.split(".")[0]]]
            for name, m in masks.items()}


def init_params(shapes, rng, dtype):
    """The original's initialisation: N(0, 1) / out, out = H per gate block, 2 for out.*."""
    return {name: (rng.standard_normal(shape) / (2 if name.startswith("out.") else shape[0] // 4)).astype(dtype)
            for name, shape in shapes.items()}


def clip_segment_count(name):
    """Per-gate clipping: an LSTM tensor has 4 gate blocks, the output layer's are whole."""
    return 1 if name.startswith("out.") else 4


def segment_offsets(shapes):
    """(n_seg + 1,) int32: where each clipping segment starts in the flat buffer (MODEL_SPEC 5)."""
    offsets, pos = [0], 0
    for name, shape in shapes.items():
        n_seg = clip_segment_count(name)
        size = int(np.prod(shape))
        for _ in range(n_seg):
            pos += size // n_seg
            offsets.append(pos)
    return np.array(offsets, np.int32)


def flat_size(shapes):
    return sum(int(np.prod(shape)) for shape in shapes.values())


def flat_views(buf, shapes):
    """{name: view of buf} laid out back to back in the order of shapes."""
    views, pos = {}, 0
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        views[name] = buf[pos:pos + n].reshape(shape)
        pos += n
    return views


class FlatState:
    """Parameters, gradients and Adadelta's Eg and Ex, each one flat buffer of xp (numpy or
    cupy) with a view per parameter, so the optimiser (segment_sq_norms + adadelta_update)
    runs over everything at once. `params` / `grads` are {name: view}, `opt` {"Eg/name": view}."""

    def __init__(self, xp, params, opt, dtype):
        self.xp = xp
        shapes = {name: tuple(p.shape) for name, p in params.items()}
        self.flat = {kind: xp.zeros(flat_size(shapes), dtype) for kind in ("param", "grad") + OPTIMISER_STATES}
        views = {kind: flat_views(buf, shapes) for kind, buf in self.flat.items()}
        self.params, self.grads = views["param"], views["grad"]
        self.opt = {f"{kind}/{name}": view for kind in OPTIMISER_STATES for name, view in views[kind].items()}
        for name, view in self.params.items():
            view[...] = xp.asarray(params[name], dtype=dtype)
        for key, view in self.opt.items():
            view[...] = xp.asarray(opt[key], dtype=dtype)
        self.segment_offsets = xp.asarray(segment_offsets(shapes))  # (n_seg + 1,) int32
        self.views = dict(self.params)  # what params[name] must be for the optimiser to see it

    def adopt(self):
        """Take back parameters a user replaced in `params` (model.params[name] = array): copied
        into their views, which return to the dict, so the optimiser and the finiteness check
        see them. ValueError when a replacement cannot take its parameter's place."""
        for name, view in self.views.items():
            value = self.params.get(name)
            if value is view:
                continue
            if value is None or getattr(value, "shape", None) != view.shape:
                raise ValueError(f"parameter {name} was replaced by "
                                 f"{'nothing' if value is None else getattr(value, 'shape', type(value).__name__)}; "
                                 f"it needs shape {view.shape}")
            view[...] = self.xp.asarray(value, dtype=view.dtype)
            self.params[name] = view


# ----------------------------------------------------------------------------- generation's layout


@dataclass
class HostWeights:
    """A model's parameters as host arrays, split and transposed for generation."""

    dtype: np.dtype
    tanh_cell: bool  # cell input activation: tanh (True) or identity (False)
    time_layers: list  # [(W_x (4H, I), W_h (4H, H), b (4H,))] per time layer
    pitch0_time_wT: np.ndarray  # (Ht, 4H0): pitch layer 0's time-output columns, transposed
    pitch0_b: np.ndarray  # (4H0,)
    pitch0_prev_wT: np.ndarray  # (2, 4H0): its previous-note columns, transposed
    pitch_sizes: np.ndarray  # (L,) int64: H of each pitch layer
    pitch_wxT: np.ndarray  # flat: W_x^T (I_l, 4H_l) of layers 1..L-1, row-major, concatenated
    pitch_wx_at: np.ndarray  # (L,) int64 offset of layer l's W_x^T in pitch_wxT (0 for l = 0)
    pitch_whT: np.ndarray  # flat: W_h^T (H_l, 4H_l) of layers 0..L-1, concatenated
    pitch_wh_at: np.ndarray  # (L,) int64 offsets into pitch_whT
    pitch_b: np.ndarray  # flat: b (4H_l,) of layers 1..L-1 (layer 0's is in pitch0_b)
    pitch_b_at: np.ndarray  # (L,) int64 offsets into pitch_b
    out_wT: np.ndarray  # (H_last, 2)
    out_b: np.ndarray  # (2,)


def host_weights(params, cell_activation="identity"):
    """Check parameters (API.md names and shapes; numpy or device arrays) and lay them out for
    generation. Raises ValueError naming the first inconsistent parameter."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    if cell_activation not in CELL_ACTIVATIONS:
        raise ValueError(f"cell_activation must be one of {CELL_ACTIVATIONS}, got {cell_activation!r}")
    host = {name: _host_array(value, name) for name, value in params.items()}
    dtype = _common_dtype(host)

    time_layers = []
    n_in = N_FEATURES
    for k in range(_count_layers(host, "time")):
        W, b, H = _layer(host, f"time.{k}", n_in)  # (4H, I + H), (4H,)
        time_layers.append((np.ascontiguousarray(W[:, :n_in]),  # (4H, I)
                            np.ascontiguousarray(W[:, n_in:]),  # (4H, H)
                            b))
        n_in = H
    time_size = n_in

    sizes, wxT, whT, biases = [], [], [], []
    n_in = time_size + 2
    for k in range(_count_layers(host, "pitch")):
        W, b, H = _layer(host, f"pitch.{k}", n_in)  # (4H, I + H), (4H,)
        sizes.append(H)
        whT.append(np.ascontiguousarray(W[:, n_in:].T))  # (H, 4H)
        if k == 0:
            pitch0_time_wT = np.ascontiguousarray(W[:, :time_size].T)  # (Ht, 4H0)
            pitch0_prev_wT = np.ascontiguousarray(W[:, time_size:n_in].T)  # (2, 4H0)
            pitch0_b = b
        else:
            wxT.append(np.ascontiguousarray(W[:, :n_in].T))  # (I, 4H)
            biases.append(b)
        n_in = H

    out_W = _param(host, "out.W", (2, n_in))  # (2, H_last)
    out_b = _param(host, "out.b", (2,))  # (2,)
    return HostWeights(
        dtype=dtype, tanh_cell=cell_activation == "tanh", time_layers=time_layers,
        pitch0_time_wT=pitch0_time_wT, pitch0_b=pitch0_b, pitch0_prev_wT=pitch0_prev_wT,
        pitch_sizes=np.array(sizes, dtype=np.int64),
        pitch_wxT=_flat([np.zeros(0, dtype)] + wxT, dtype), pitch_wx_at=_offsets([0] + wxT),
        pitch_whT=_flat(whT, dtype), pitch_wh_at=_offsets(whT),
        pitch_b=_flat([np.zeros(0, dtype)] + biases, dtype), pitch_b_at=_offsets([0] + biases),
        out_wT=np.ascontiguousarray(out_W.T), out_b=out_b)


def _host_array(value, name):
    value = to_host(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"parameter {name} must be an array, got {type(value).__name__}")
    return value


def _common_dtype(host):
    dtypes = {value.dtype for value in host.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        raise ValueError(f"parameters must all be float32 or all float64, got {sorted(map(str, dtypes))}")
    return next(iter(dtypes))


def _count_layers(host, stack):
    count = 0
    while f"{stack}.{count}.W" in host:
        count += 1
    if count == 0:
        raise ValueError(f"model has no {stack} layers (no parameter {stack}.0.W)")
    return count


def _layer(host, name, n_in):
    """(W (4H, n_in + H), b (4H,), H) of one LSTM layer, shapes checked."""
    W = host.get(f"{name}.W")
    if W is None or W.ndim != 2 or W.shape[0] % 4 or W.shape[0] == 0:
        raise ValueError(f"parameter {name}.W must have shape (4*H, I + H), got "
                         f"{None if W is None else W.shape}")
    H = W.shape[0] // 4
    _param(host, f"{name}.W", (4 * H, n_in + H))
    b = _param(host, f"{name}.b", (4 * H,))
    return W, b, H


def _param(host, name, shape):
    value = host.get(name)
    if value is None:
        raise ValueError(f"model has no parameter {name}")
    if value.shape != shape:
        raise ValueError(f"parameter {name} must have shape {shape}, got {value.shape}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"parameter {name} holds NaN or infinite values")
    return np.ascontiguousarray(value)


def _flat(arrays, dtype):
    return np.concatenate([a.ravel() for a in arrays]).astype(dtype, copy=False)


def _offsets(arrays):
    """(len,) int64: where each array starts in their concatenation (ints count as size 0)."""
    sizes = [0 if isinstance(a, int) else a.size for a in arrays]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
