"""The cuda backend: CuPy glue around kernels/*.cu.

Host code only orchestrates: the math is in the kernels (twins in backends/reference.py) and in
cuBLAS GEMMs (cupy.matmul) for the input projections of all steps. Parameters, optimiser state
and activations are CuPy arrays; a batch goes to the device once and the only transfer back is
the loss (one float).

Kernels compile once per process (cupy.RawModule, which also keeps its own disk cache of
binaries). The `#include "common.cuh"` line is replaced by the header's text before compiling,
so CuPy's cache key covers the header too.

Status: the forward pass (loss) runs on the device. Gradients and training on the device come
with the backward kernels (CUDA kernels II); until then `TRAINS` is False, so backend="auto"
keeps choosing numpy for training and Model(backend="cuda").gradients raises a clear error.
"""
from pathlib import Path

import numpy as np

from ..nvrtc import BASE_OPTIONS

KERNELS_DIR = Path(__file__).resolve().parents[2] / "kernels"
TRAINS = False
N_NOTES = 78
N_FEATURES = 80
TILE = 16  # lstm.cu: TR = TJ = 16
LOSS_THREADS = 256  # output_loss.cu
ACTS = {"identity": 0, "tanh": 1}


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


def kernel_source(name):
    """kernels/<name>.cu with common.cuh inlined (what NVRTC compiles)."""
    common = (KERNELS_DIR / "common.cuh").read_text()
    return (KERNELS_DIR / f"{name}.cu").read_text().replace('#include "common.cuh"', common)


def kernel(module, name):
    """A compiled kernel function; the module compiles on first use."""
    import cupy

    if module not in _modules:
        options = tuple(o for o in BASE_OPTIONS if o not in ("-ftz=true", "--device-as-default-execution-space"))
        _modules[module] = cupy.RawModule(code=kernel_source(module), options=options)
    return _modules[module].get_function(name)


def _blocks(n, size):
    return (n + size - 1) // size


class CudaBackend:
    """Parameters and optimiser state on the device; loss on the device."""

    def __init__(self, params, opt, config):
        import cupy

        self.cp = cupy
        self.config = config
        self.act = ACTS[config["cell_activation"]]
        self.params = {k: cupy.asarray(v, dtype=cupy.float32) for k, v in params.items()}
        self.opt = {k: cupy.asarray(v, dtype=cupy.float32) for k, v in opt.items()}

    # ------------------------------------------------------------------ forward pieces

    def note_inputs(self, S):
        """S (B, T, 78, 2) uint8 on the device -> (T-1, B*78, 80)."""
        B, T = S.shape[:2]
        X = self.cp.empty((T - 1, B * N_NOTES, N_FEATURES), self.cp.float32)
        kernel("features", "note_inputs")((_blocks(X.shape[0] * X.shape[1], 128),), (128,),
                                           (S, X, np.int32(B), np.int32(T)))
        return X

    def lstm_layer_forward(self, x, W, b, mask):
        """x (L, R, I) -> h_out (L, R, H) (dropped when mask is given) and the cache for backward."""
        cp = self.cp
        L, R, I = x.shape
        H = W.shape[0] // 4
        xproj = (x.reshape(L * R, I) @ W[:, :I].T + b).reshape(L, R, 4 * H)  # cuBLAS, all steps
        W_h = cp.ascontiguousarray(W[:, I:])  # (4H, H)
        h = cp.empty((L, R, H), cp.float32)
        c = cp.empty((L, R, H), cp.float32)
        gates = cp.empty((L, R, 4 * H), cp.float32)
        h_out = cp.empty((L, R, H), cp.float32) if mask is not None else h
        zeros = cp.zeros((R, H), cp.float32)
        step = kernel("lstm", "lstm_step_forward")
        grid, block = (_blocks(H, TILE), _blocks(R, TILE)), (TILE, TILE)
        for t in range(L):
            h_prev, c_prev = (h[t - 1], c[t - 1]) if t else (zeros, zeros)
            out = h_out[t] if mask is not None else h[t]
            step(grid, block, (xproj[t], h_prev, c_prev, W_h, mask if mask is not None else zeros,
                               h[t], c[t], gates[t], out, np.int32(R), np.int32(H),
                               np.int32(self.act), np.int32(mask is not None)))
        return h_out, (x, h, c, gates)

    def pitch_inputs(self, time_out, S):
        """(T-1, B*78, Ht) and S -> (78, B*(T-1), Ht+2), with the targets (78, B*(T-1), 2)."""
        L, R, Ht = time_out.shape
        B = R // N_NOTES
        out = self.cp.empty((N_NOTES, B * L, Ht + 2), self.cp.float32)
        kernel("layout", "pitch_inputs")((_blocks(out.size, 256),), (256,),
                                          (time_out, S, out, np.int32(B), np.int32(L), np.int32(Ht)))
        y = self.cp.empty((N_NOTES, B * L, 2), self.cp.float32)
        kernel("layout", "pitch_targets")((_blocks(y.size, 256),), (256,),
                                           (S, y, np.int32(B), np.int32(L)))
        return out, y

    def output_loss_forward(self, h, y):
        """h (78, R, Hp), y (78, R, 2) -> P (78, R, 2) and the summed loss as a device scalar."""
        M, Hp = h.shape[0] * h.shape[1], h.shape[2]
        P = self.cp.empty(h.shape[:2] + (2,), self.cp.float32)
        partial = self.cp.empty(_blocks(M, LOSS_THREADS), self.cp.float64)
        kernel("output_loss", "output_loss_forward")(
            (partial.size,), (LOSS_THREADS,),
            (self.cp.ascontiguousarray(h), self.params["out.W"], self.params["out.b"], y, P, partial,
             np.int32(M), np.int32(Hp)))
        return P, partial.sum()

    def forward(self, batch, masks=None):
        """The whole forward pass on the device: (device loss scalar, caches)."""
        p = self.params
        S = self.cp.asarray(np.ascontiguousarray(batch, dtype=np.uint8))
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

    # ------------------------------------------------------------------ Model's interface

    def loss(self, batch):
        return float(self.forward(batch)[0])

    def gradients(self, batch, masks):
        raise NotImplementedError("gradients on the cuda backend need the backward kernels "
                                  "(CUDA kernels II), not written yet; train with backend='numpy'")

    def adadelta(self, grads):
        raise NotImplementedError("the fused Adadelta kernel (CUDA kernels II) is not written yet")
