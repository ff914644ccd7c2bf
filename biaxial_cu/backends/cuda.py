"""The cuda backend: CuPy glue around kernels/*.cu.

Host code only orchestrates: the math is in the kernels (twins in backends/reference.py) and in
cuBLAS GEMMs (cupy.matmul) for the input projections of all steps. Parameters, optimiser state
and activations are CuPy arrays; a batch goes to the device once and the only transfer back is
the loss (one float).

Kernels compile once per process (cupy.RawModule, which also keeps its own disk cache of
binaries). The `#include "common.cuh"` line is replaced by the header's text before compiling,
so CuPy's cache key covers the header too.

Training: gradients come from the backward kernels (BPTT step by step, weight gradients as
one GEMM per tensor over all steps); parameters, gradients and Adadelta's accumulators each
live in one flat buffer so the optimiser is two launches for everything. Dropout masks are
drawn on the device by a counter-based hash of a seed that Model.rng gives (kernels/dropout.cu),
so a resumed run continues exactly. The recurrent step kernels take a layer's whole buffers and
the step index, so each step loop launches with one argument tuple and no per-step slicing.
Why no CUDA graph of the whole step: CuPy 14 refuses cuBLAS calls during stream capture
(NotImplementedError in cublas.setStream), and the step's GEMMs go through cuBLAS.
"""
import contextlib
import os
from pathlib import Path

import numpy as np

from ..nvrtc import BASE_OPTIONS

KERNELS_DIR = Path(__file__).resolve().parents[2] / "kernels"
TRAINS = True
N_NOTES = 78
N_FEATURES = 80
# lstm.cu's default tiles (a test checks them against its #defines; bench/lstm_tiles.py times
# others, compiled with -D options). Blocks are (32, *_TY) threads; a thread owns *_RPT rows.
LSTM_TILES = {"FWD_TY": 4, "FWD_RPT": 8, "BWD_TY": 8, "BWD_RPT": 4, "BWD_UPT": 2, "BWD_TK": 64}
# the tensor-core (TF32) step kernels' tiles, forward (F) and backward (B): TC_?W warps of TC_?M x 16
# rows a block, TC_FU units (x 4 gates) / TC_BU units a block, TC_?K k per shared-memory chunk
LSTM_TC_TILES = {"TC_FW": 4, "TC_FM": 1, "TC_FU": 16, "TC_FK": 16, "TC_BW": 4, "TC_BM": 1, "TC_BU": 64, "TC_BK": 64}
LOSS_THREADS = 256  # output_loss.cu
ACTS = {"identity": 0, "tanh": 1}
# BIAXIAL_CU_TF32=1: training's matrix products on TF32 tensor cores (what PyTorch's cuDNN LSTMs
# do by default): the recurrent step kernels' *_tf32 variants and CuPy's cuBLAS GEMMs; the cells,
# the loss, the optimiser and generation stay fp32. Default off: fp32 everywhere.
TF32_ENV = "BIAXIAL_CU_TF32"


def tf32_requested():
    return os.environ.get(TF32_ENV) == "1"


@contextlib.contextmanager
def cublas_tf32(cupy):
    """CuPy's float32 GEMMs on TF32 tensor cores inside the block (its process-wide setting,
    the one CUPY_TF32=1 selects, put back afterwards)."""
    from cupy._core import _routines_linalg as linalg

    before = linalg.get_compute_type(np.float32)
    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32)
    try:
        yield
    finally:
        linalg.set_compute_type(np.float32, before)


def cuda_unavailable_reason():
    """None when kernels can run on a GPU here, else why not."""
    try:
        import cupy
    except ImportError as e:
        return f"CuPy is not installed ({e}); pip install 'biaxial_cu[cuda13]' (or [cuda12])"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        return f"no usable CUDA device ({type(e).__name__}: {e})"
    if n == 0:
        return "no CUDA device found"
    if not (KERNELS_DIR / "common.cuh").is_file():
        return f"kernel sources not found in {KERNELS_DIR}"
    return None


_modules = {}
_functions = {}  # (module, name) -> kernel: RawModule.get_function builds a new one per call


def kernel_source(name):
    """kernels/<name>.cu with common.cuh inlined (what NVRTC compiles)."""
    common = (KERNELS_DIR / "common.cuh").read_text()
    return (KERNELS_DIR / f"{name}.cu").read_text().replace('#include "common.cuh"', common)


# Per-module extra NVRTC options: sample.cu must not fuse multiply-adds, so its dot products
# round as the CPU generator's do (exact compositions for the same uniforms).
MODULE_OPTIONS = {"sample": ("--fmad=false",)}


def module_options(module, defines=()):
    """NVRTC options for kernels/<module>.cu through CuPy (which adds -ftz=true and
    --device-as-default-execution-space itself), plus -D<define> for each define."""
    base = tuple(o for o in BASE_OPTIONS if o not in ("-ftz=true", "--device-as-default-execution-space"))
    return base + MODULE_OPTIONS.get(module, ()) + tuple(f"-D{d}" for d in defines)


def kernel(module, name):
    """A compiled kernel function; the module compiles on first use."""
    import cupy

    if (module, name) not in _functions:
        if module not in _modules:
            _modules[module] = cupy.RawModule(code=kernel_source(module), options=module_options(module))
        _functions[module, name] = _modules[module].get_function(name)
    return _functions[module, name]


def _blocks(n, size):
    return (n + size - 1) // size


def lstm_step_kernel_name(direction, tf32):
    """lstm.cu's step kernel: "forward" / "backward", fp32 CUDA cores or TF32 tensor cores."""
    return f"lstm_step_{direction}" + ("_tf32" if tf32 else "")


def _tc_launch(R, H, tiles, direction):
    t = {**LSTM_TC_TILES, **(tiles or {})}
    warps, m_tiles, units = (t[f"TC_{direction}{k}"] for k in "WMU")
    return (_blocks(H, units), _blocks(R, 16 * m_tiles * warps)), (32 * warps,)


def lstm_forward_launch(R, H, tiles=None, tf32=False):
    """(grid, block) of lstm_step_forward for R rows of H units: a block covers FWD_TY * FWD_RPT
    rows x 32 units (tf32: TC_FW * TC_FM * 16 rows x TC_FU units). tiles: the -D values the
    kernel was compiled with (default LSTM_TILES / LSTM_TC_TILES)."""
    if tf32:
        return _tc_launch(R, H, tiles, "F")
    t = {**LSTM_TILES, **(tiles or {})}
    return (_blocks(H, 32), _blocks(R, t["FWD_TY"] * t["FWD_RPT"])), (32, t["FWD_TY"])


def lstm_backward_launch(R, H, tiles=None, tf32=False):
    """(grid, block) of lstm_step_backward: a block covers BWD_TY * BWD_RPT rows x 32 * BWD_UPT
    units (tf32: TC_BW * TC_BM * 16 rows x TC_BU units)."""
    if tf32:
        return _tc_launch(R, H, tiles, "B")
    t = {**LSTM_TILES, **(tiles or {})}
    return (_blocks(H, 32 * t["BWD_UPT"]), _blocks(R, t["BWD_TY"] * t["BWD_RPT"])), (32, t["BWD_TY"])


class CudaBackend:
    """Parameters and optimiser state on the device; loss on the device."""

    def __init__(self, params, opt, config, xp=None, kernel_fn=None, tf32=None):
        """xp / kernel_fn: the array module and kernel lookup; CuPy and compiled kernels unless
        a test runs this same orchestration on NumPy arrays with the CPU harness's kernels.
        tf32: TF32 tensor cores for training's matrix products (default: BIAXIAL_CU_TF32=1)."""
        if xp is None:
            import cupy as xp
        self.cp = xp
        self.kernel = kernel_fn or kernel
        self.tf32 = tf32_requested() if tf32 is None else bool(tf32)
        if self.tf32 and hasattr(xp, "cuda"):
            cc = int(xp.cuda.Device().compute_capability)
            if cc < 80:
                raise RuntimeError(f"{TF32_ENV}=1 needs TF32 tensor cores (compute capability 8.0 or newer); "
                                   f"this GPU has {cc // 10}.{cc % 10}: unset it to train in fp32")
        cupy = xp
        self.config = config
        self.act = ACTS[config["cell_activation"]]
        self.names = list(params)
        shapes = {k: tuple(v.shape) for k, v in params.items()}
        # One flat buffer each for parameters, gradients, Eg and Ex; the dicts hold views.
        self.flat = {kind: cupy.zeros(sum(int(np.prod(s)) for s in shapes.values()), cupy.float32)
                     for kind in ("param", "grad", "Eg", "Ex")}
        views = {kind: self._views(buf, shapes) for kind, buf in self.flat.items()}
        self.params, self.grads = views["param"], views["grad"]
        self.opt = {f"{kind}/{k}": v for kind in ("Eg", "Ex") for k, v in views[kind].items()}
        for k in self.names:
            self.params[k][...] = cupy.asarray(params[k], dtype=cupy.float32)
        for k, v in opt.items():
            self.opt[k][...] = cupy.asarray(v, dtype=cupy.float32)
        self.segment_offsets = cupy.asarray(segment_offsets(shapes), dtype=cupy.int32)  # (n_seg+1,)
        self.seed = cupy.zeros(1, cupy.uint64)  # dropout seed, read by kernels/dropout.cu
        self.unused = cupy.zeros(1, cupy.float32)  # for pointer arguments a kernel will not touch

    @staticmethod
    def _views(buf, shapes):
        views, pos = {}, 0
        for k, shape in shapes.items():
            n = int(np.prod(shape))
            views[k] = buf[pos:pos + n].reshape(shape)
            pos += n
        return views

    # ------------------------------------------------------------------ forward pieces

    def note_inputs(self, S):
        """S (B, T, 78, 2) uint8 on the device -> (T-1, B*78, 80)."""
        B, T = S.shape[:2]
        X = self.cp.empty((T - 1, B * N_NOTES, N_FEATURES), self.cp.float32)
        self.kernel("features", "note_inputs")((_blocks(X.shape[0] * X.shape[1], 128),), (128,),
                                           (S, X, np.int32(B), np.int32(T)))
        return X

    def lstm_layer_forward(self, x, W, b, mask):
        """x (L, R, I) -> h_out (L, R, H) (dropped when mask is given) and the cache for backward."""
        cp = self.cp
        L, R, I = x.shape
        H = W.shape[0] // 4
        # cuBLAS, all steps at once; each step turns its slice into the activated gates in place
        gates = (x.reshape(L * R, I) @ W[:, :I].T).reshape(L, R, 4 * H)  # (L, R, 4H)
        gates += b  # in place: no second (L, R, 4H) buffer
        W_h = cp.ascontiguousarray(W[:, I:])  # (4H, H)
        h = cp.empty((L, R, H), cp.float32)
        c = cp.empty((L, R, H), cp.float32)
        h_out = cp.empty((L, R, H), cp.float32) if mask is not None else h  # h itself undropped
        step = self.kernel("lstm", lstm_step_kernel_name("forward", self.tf32))
        grid, block = lstm_forward_launch(R, H, tf32=self.tf32)
        args = (gates, h, c, W_h, self.unused if mask is None else mask, self.unused if mask is None else h_out,
                np.int32(R), np.int32(H), np.int32(self.act), np.int32(mask is not None))
        for t in range(L):  # the same buffers at every step: only t changes
            step(grid, block, args + (np.int32(t),))
        return h_out, (x, h, c, gates)

    def pitch_inputs(self, time_out, S):
        """(T-1, B*78, Ht) and S -> (78, B*(T-1), Ht+2), with the targets (78, B*(T-1), 2)."""
        L, R, Ht = time_out.shape
        B = R // N_NOTES
        out = self.cp.empty((N_NOTES, B * L, Ht + 2), self.cp.float32)
        self.kernel("layout", "pitch_inputs")((_blocks(out.size, 256),), (256,),
                                          (time_out, S, out, np.int32(B), np.int32(L), np.int32(Ht)))
        y = self.cp.empty((N_NOTES, B * L, 2), self.cp.float32)
        self.kernel("layout", "pitch_targets")((_blocks(y.size, 256),), (256,),
                                           (S, y, np.int32(B), np.int32(L)))
        return out, y

    def output_loss_forward(self, h, y):
        """h (78, R, Hp), y (78, R, 2) -> P (78, R, 2) and the summed loss as a device scalar."""
        M, Hp = h.shape[0] * h.shape[1], h.shape[2]
        P = self.cp.empty(h.shape[:2] + (2,), self.cp.float32)
        partial = self.cp.empty(_blocks(M, LOSS_THREADS), self.cp.float64)
        self.kernel("output_loss", "output_loss_forward")(
            (partial.size,), (LOSS_THREADS,),
            (self.cp.ascontiguousarray(h), self.params["out.W"], self.params["out.b"], y, P, partial,
             np.int32(M), np.int32(Hp)))
        return P, partial.sum()

    def to_device(self, batch):
        """(B, T, 78, 2) host batch -> uint8 device array."""
        return self.cp.asarray(np.ascontiguousarray(batch, dtype=np.uint8))

    def forward(self, S, masks=None):
        """The whole forward pass of a device batch S: (device loss scalar, caches)."""
        p = self.params
        x = self.note_inputs(S)
        caches = {}
        for k in range(len(self.config["t_layer_sizes"])):
            mask = masks.get(f"time.{k}") if masks else None
            x, caches[f"time.{k}"] = self.lstm_layer_forward(x, p[f"time.{k}.W"], p[f"time.{k}.b"], mask)
        x, y = self.pitch_inputs(x, S)
        for k in range(len(self.config["p_layer_sizes"])):
            mask = masks.get(f"pitch.{k}") if masks else None
            x, caches[f"pitch.{k}"] = self.lstm_layer_forward(x, p[f"pitch.{k}.W"], p[f"pitch.{k}.b"], mask)
        P, loss = self.output_loss_forward(x, y)
        return loss, (caches, x, P, y)

    # ------------------------------------------------------------------ backward pieces

    def lstm_layer_backward(self, dh_above, cache, W, mask, gW, gb, need_dx=True):
        """dh_above (L, R, H): gradient reaching the layer's output (before its mask).

        Writes dW into gW (4H, I+H) and db into gb (4H,); returns dx (L, R, I), or None when
        not need_dx (the first time layer: nothing learns from the note features).
        """
        cp = self.cp
        x, h, c, gates = cache  # gates is consumed: it becomes dpre
        L, R, I = x.shape
        H = W.shape[0] // 4
        W_h = cp.ascontiguousarray(W[:, I:])  # (4H, H)
        dpre = gates  # each step's gradient overwrites its gates in place: (L, R, 4H)
        dc, dc_prev = cp.zeros((R, H), cp.float32), cp.empty((R, H), cp.float32)
        step = self.kernel("lstm", lstm_step_kernel_name("backward", self.tf32))
        grid, block = lstm_backward_launch(R, H, tf32=self.tf32)
        args = (cp.ascontiguousarray(dh_above), gates, W_h, c, self.unused if mask is None else mask,
                np.int32(R), np.int32(H), np.int32(self.act), np.int32(mask is not None), np.int32(L))
        for t in range(L - 1, -1, -1):  # dh from step t+1 = dpre[t+1] W_h, inside the kernel
            step(grid, block, args + (dc, dc_prev, np.int32(t)))
            dc, dc_prev = dc_prev, dc
        dflat = dpre.reshape(L * R, 4 * H)
        gW[:, :I] = dflat.T @ x.reshape(L * R, I)
        gW[:, I:] = dflat[R:].T @ h[:-1].reshape((L - 1) * R, H)  # h_prev of step 0 is zero
        gb[...] = dflat.sum(axis=0)
        return (dflat @ W[:, :I]).reshape(L, R, I) if need_dx else None

    def output_loss_backward(self, P, y):
        M = P.shape[0] * P.shape[1]
        d = self.cp.empty_like(P)
        self.kernel("output_loss", "output_loss_backward")((_blocks(M, 256),), (256,), (P, y, d, np.int32(M)))
        return d

    def pitch_to_time(self, d, B, Ht):
        """(78, B*L, Hw) -> its first Ht columns in the time layout (L, B*78, Ht)."""
        N, R, Hw = d.shape
        L = R // B
        out = self.cp.empty((L, B * N_NOTES, Ht), self.cp.float32)
        self.kernel("layout", "pitch_to_time")((_blocks(out.size, 256),), (256,),
                                           (self.cp.ascontiguousarray(d), out, np.int32(B), np.int32(L),
                                            np.int32(Ht), np.int32(Hw)))
        return out

    # ------------------------------------------------------------------ Model's interface

    def gemm_precision(self):
        """The context of every GEMM of a forward or backward pass: TF32 when self.tf32."""
        on_gpu = hasattr(self.cp, "cuda")  # not on the harness's NumPy arrays
        return cublas_tf32(self.cp) if self.tf32 and on_gpu else contextlib.nullcontext()

    def loss(self, batch):
        with self.gemm_precision():
            return float(self.forward(self.to_device(batch))[0])

    def parameters_finite(self):
        return bool(self.cp.isfinite(self.flat["param"]).all())

    def mask_shapes(self, B, T):
        """{layer: (rows, H)}: one dropout mask row per sequence row (MODEL_SPEC 3)."""
        shapes = {f"time.{k}": (B * N_NOTES, H) for k, H in enumerate(self.config["t_layer_sizes"])}
        shapes.update({f"pitch.{k}": (B * (T - 1), H) for k, H in enumerate(self.config["p_layer_sizes"])})
        return shapes

    def dropout_masks(self, B, T, p, seed):
        """Every mask of a batch from one seed (taken from Model.rng, so runs resume exactly):
        kernels/dropout.cu, one launch; the seed goes through device memory (self.seed)."""
        self.seed[...] = seed
        return self.draw_masks(B, T, p)

    def draw_masks(self, B, T, p):
        """Masks from the seed in self.seed: views of one flat buffer, element order = layer order."""
        shapes = self.mask_shapes(B, T)
        flat = self.cp.empty(sum(r * h for r, h in shapes.values()), self.cp.float32)
        p32 = np.float32(p)
        self.kernel("dropout", "dropout_mask_hash")(
            (_blocks(flat.size, 256),), (256,),
            (self.seed, flat, np.int32(flat.size), p32, np.float32(1) / (np.float32(1) - p32)))
        return self._views(flat, shapes)

    def gradients(self, batch, masks):
        """(device loss scalar, {name: gradient view}) of a host batch; masks numpy or cupy."""
        cp = self.cp
        if masks:
            masks = {k: cp.ascontiguousarray(cp.asarray(v, dtype=cp.float32)) for k, v in masks.items()}
        return self.device_gradients(self.to_device(batch), masks)

    def device_gradients(self, S, masks):
        """gradients of a device batch S (B, T, 78, 2) with device masks (or None)."""
        with self.gemm_precision():
            return self._device_gradients(S, masks)

    def _device_gradients(self, S, masks):
        loss, (caches, x, P, y) = self.forward(S, masks)
        B = S.shape[0]
        g, p = self.grads, self.params
        dlogits = self.output_loss_backward(P, y).reshape(-1, 2)  # (78*R, 2)
        Hp = x.shape[-1]
        g["out.W"][...] = dlogits.T @ x.reshape(-1, Hp)
        g["out.b"][...] = dlogits.sum(axis=0)
        dx = (dlogits @ p["out.W"]).reshape(x.shape)  # (78, R, Hp)
        for k in reversed(range(len(self.config["p_layer_sizes"]))):
            name = f"pitch.{k}"
            dx = self.lstm_layer_backward(dx, caches.pop(name), p[f"{name}.W"], masks.get(name) if masks else None,
                                          g[f"{name}.W"], g[f"{name}.b"])
        dx = self.pitch_to_time(dx, B, self.config["t_layer_sizes"][-1])
        for k in reversed(range(len(self.config["t_layer_sizes"]))):
            name = f"time.{k}"
            dx = self.lstm_layer_backward(dx, caches.pop(name), p[f"{name}.W"], masks.get(name) if masks else None,
                                          g[f"{name}.W"], g[f"{name}.b"], need_dx=k > 0)
        return loss, g

    def train_step(self, batch, p, seed):
        """Forward, backward and Adadelta of a host batch, masks drawn from seed (None: no
        dropout): the loss as a device scalar."""
        masks = None if seed is None else self.dropout_masks(*batch.shape[:2], p, seed)
        loss, _ = self.device_gradients(self.to_device(batch), masks)
        self.adadelta()
        return loss

    def adadelta(self, rho=0.95, eps=1e-6, max_norm=5.0):
        """Clip per segment and update every parameter from self.grads: two launches."""
        cp = self.cp
        n_seg = self.segment_offsets.size - 1
        sq = cp.empty(n_seg, cp.float64)
        self.kernel("adadelta", "segment_sq_norms")((n_seg,), (256,), (self.flat["grad"], self.segment_offsets, sq))
        n = self.flat["param"].size
        self.kernel("adadelta", "adadelta_update")(
            (_blocks(n, 256),), (256,),
            (self.flat["param"], self.flat["grad"], self.flat["Eg"], self.flat["Ex"], self.segment_offsets, sq,
             np.int32(n_seg), np.int32(n), np.float32(rho), np.float32(eps), np.float32(max_norm)))


def segment_offsets(shapes):
    """Offsets into the flat buffer of every clipping segment (MODEL_SPEC 5: per gate block)."""
    from ..model import clip_segment_count

    offsets, pos = [0], 0
    for name, shape in shapes.items():
        n_seg = clip_segment_count(name)
        size = int(np.prod(shape))
        for _ in range(n_seg):
            pos += size // n_seg
            offsets.append(pos)
    return offsets


class DeviceGenerator:
    """compose on the device (MODEL_SPEC 7): per step a few launches and one pitch_sweep.

    The weights are laid out exactly as generate.HostWeights (the CPU generator's), uploaded once.
    """

    def __init__(self, backend, weights):
        cp = self.cp = backend.cp
        self.backend = backend
        self.w = weights
        up = lambda a: cp.asarray(np.ascontiguousarray(a))  # noqa: E731
        self.time_layers = [(up(W_x), up(W_h), up(b)) for W_x, W_h, b in weights.time_layers]
        self.pitch0_time_wT, self.pitch0_b = up(weights.pitch0_time_wT), up(weights.pitch0_b)
        self.sweep_args = [up(weights.pitch0_prev_wT), up(weights.pitch_sizes), up(weights.pitch_wxT),
                           up(weights.pitch_wx_at), up(weights.pitch_whT), up(weights.pitch_wh_at),
                           up(weights.pitch_b), up(weights.pitch_b_at), up(weights.out_wT), up(weights.out_b)]
        sizes = [int(s) for s in weights.pitch_sizes]
        if len(sizes) > 4 or max(sizes) > 256:
            raise ValueError("device generation supports at most 4 pitch layers of at most 256 units")
        self.n_pitch_layers = len(sizes)
        self.sweep_threads = 32 * -(-4 * max(sizes) // 32)

    def compose(self, seeds, steps, conservativity, adaptive, uniforms):
        """seeds (K, 78, 2) uint8, uniforms (K, steps, 78, 2) float64 -> (K, steps+1, 78, 2) uint8."""
        cp, kern = self.cp, self.backend.kernel
        K = seeds.shape[0]
        R = K * N_NOTES
        states = cp.zeros((steps + 1, K, N_NOTES, 2), cp.uint8)  # step-major: each step contiguous
        states[0] = cp.asarray(seeds)
        U = cp.asarray(np.ascontiguousarray(np.moveaxis(uniforms, 1, 0)))  # (steps, K, 78, 2)
        cons = cp.full(K, conservativity, cp.float64)
        # per time layer, slots 0 (previous step) and 1 (this step) of what the training kernel
        # keeps per step: gates (2, R, 4H) (xproj, then the gates), h and c (2, R, H)
        sizes = [W_h.shape[1] for _, W_h, _ in self.time_layers]
        gates = [cp.empty((2, R, 4 * H), cp.float32) for H in sizes]
        h = [cp.zeros((2, R, H), cp.float32) for H in sizes]
        c = [cp.zeros((2, R, H), cp.float32) for H in sizes]
        X = cp.empty((R, N_FEATURES), cp.float32)
        probs = cp.empty((K, N_NOTES, 2), cp.float32)
        act = np.int32(self.w.tanh_cell)
        step = kern("lstm", "lstm_step_forward")
        launches = [lstm_forward_launch(R, H) for H in sizes]
        unused = self.backend.unused
        for t in range(steps):
            kern("features", "note_inputs_at")((_blocks(R, 128),), (128,), (states[t], X, np.int32(K), np.int32(t)))
            x = X
            for layer, (W_x, W_h, b) in enumerate(self.time_layers):
                H = sizes[layer]
                cp.matmul(x, W_x.T, out=gates[layer][1])  # (R, 4H)
                gates[layer][1] += b
                step(*launches[layer], (gates[layer], h[layer], c[layer], W_h, unused, unused,
                                        np.int32(R), np.int32(H), act, np.int32(0), np.int32(1)))
                x = h[layer][1]
            pitch0_in = x @ self.pitch0_time_wT + self.pitch0_b  # (R, 4H0)
            kern("sample", "pitch_sweep")(
                (K,), (self.sweep_threads,),
                (pitch0_in, *self.sweep_args, U[t], cons, states[t + 1], probs,
                 np.int32(self.n_pitch_layers), act, np.int32(adaptive)))
            for layer in range(len(sizes)):  # this step's state becomes the previous one
                h[layer][0] = h[layer][1]
                c[layer][0] = c[layer][1]
        return cp.asnumpy(cp.moveaxis(states, 0, 1)) if hasattr(cp, "asnumpy") else np.moveaxis(states, 0, 1).copy()
