"""CudaBackend: the model on the GPU, CuPy glue around kernels/*.cu.

Host code only orchestrates: the math is in the kernels (twins in backends/reference.py) and in
cuBLAS GEMMs (cupy.matmul) for the input projections of all steps and the weight gradients.
Parameters, gradients and Adadelta's accumulators live in flat device buffers (params.FlatState),
so the optimiser is two launches for everything; a batch goes to the device once and the only
transfer back is the loss (one float).

Gradients come from the backward kernels (BPTT step by step, weight gradients as one GEMM per
tensor over all steps). Dropout masks are drawn on the device by a counter-based hash of a seed
that the model's generator gives (kernels/dropout.cu), so a resumed run continues exactly. The
recurrent step kernels take a layer's whole buffers and the step index, so each step loop
launches with one argument tuple and no per-step slicing. No CUDA graph of the whole step: CuPy 14
refuses cuBLAS calls during stream capture (NotImplementedError in cublas.setStream).

TF32 (config["tf32"]): training's matrix products on TF32 tensor cores, as PyTorch's cuDNN LSTMs
do by default: the recurrent step kernels' *_tf32 variants and CuPy's cuBLAS GEMMs; the cells, the
loss, the optimiser and generation stay fp32.
"""
import contextlib

import numpy as np

from ...common import ADADELTA_EPS, ADADELTA_RHO, CLIP_NORM, N_FEATURES, N_NOTES, to_host
from ...params import FlatState, flat_size, flat_views, mask_shapes
from .. import reference as ref
from .generator import DeviceGenerator
from .kernels import (ACTS, ELEMENTWISE_THREADS, FEATURE_THREADS, LOSS_THREADS, NORM_THREADS, blocks, cublas_tf32,
                      kernel, lstm_backward_launch, lstm_forward_launch, lstm_step_kernel_name)


class CudaBackend:
    name = "cuda"

    def __init__(self, config, params, opt, xp=None, kernel_fn=None):
        """config: Model.config; params, opt: host arrays. xp / kernel_fn: the array module and
        kernel lookup; CuPy and compiled kernels unless a test runs this same orchestration on
        NumPy arrays with the CPU harness's kernels."""
        if xp is None:
            import cupy as xp
        self.cp = xp
        self.kernel = kernel_fn or kernel
        self.config = config
        self.tf32 = bool(config.get("tf32", False))
        if self.tf32 and hasattr(xp, "cuda"):
            cc = int(xp.cuda.Device().compute_capability)
            if cc < 80:
                raise RuntimeError(f"tf32 needs TF32 tensor cores (compute capability 8.0 or newer); "
                                   f"this GPU has {cc // 10}.{cc % 10}: train in fp32 (tf32=False)")
        self.act = ACTS[config["cell_activation"]]
        self.state = FlatState(xp, params, opt, xp.float32)
        self.params, self.grads, self.opt = self.state.params, self.state.grads, self.state.opt
        self.unused = xp.zeros(1, xp.float32)  # for pointer arguments a kernel will not touch

    # ------------------------------------------------------------------ forward pieces

    def note_inputs(self, S, P):
        """S (B, T, 78, 2) uint8, P (B, T) int32 bar positions, on the device -> (T-1, B*78, 80)."""
        B, T = S.shape[:2]
        X = self.cp.empty((T - 1, B * N_NOTES, N_FEATURES), self.cp.float32)
        self.kernel("features", "note_inputs")((blocks(X.shape[0] * X.shape[1], FEATURE_THREADS),), (FEATURE_THREADS,),
                                               (S, P, X, np.int32(B), np.int32(T)))
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
        self.kernel("layout", "pitch_inputs")((blocks(out.size, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
                                              (time_out, S, out, np.int32(B), np.int32(L), np.int32(Ht)))
        y = self.cp.empty((N_NOTES, B * L, 2), self.cp.float32)
        self.kernel("layout", "pitch_targets")((blocks(y.size, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
                                               (S, y, np.int32(B), np.int32(L)))
        return out, y

    def output_loss_forward(self, h, y):
        """h (78, R, Hp), y (78, R, 2) -> P (78, R, 2) and the summed loss as a device scalar."""
        M, Hp = h.shape[0] * h.shape[1], h.shape[2]
        P = self.cp.empty(h.shape[:2] + (2,), self.cp.float32)
        partial = self.cp.empty(blocks(M, LOSS_THREADS), self.cp.float64)
        self.kernel("output_loss", "output_loss_forward")(
            (partial.size,), (LOSS_THREADS,),
            (self.cp.ascontiguousarray(h), self.params["out.W"], self.params["out.b"], y, P, partial,
             np.int32(M), np.int32(Hp)))
        return P, partial.sum()

    def to_device(self, batch, positions=None):
        """(B, T, 78, 2) host batch, (B, T) bar positions (None: each step's index in its segment)
        -> (uint8, int32) device arrays."""
        positions = ref.segment_positions(*batch.shape[:2]) if positions is None else positions
        return (self.cp.asarray(np.ascontiguousarray(batch, dtype=np.uint8)),
                self.cp.asarray(np.ascontiguousarray(positions, dtype=np.int32)))

    def device_forward(self, S, P, masks=None):
        """The whole forward pass of a device batch S with bar positions P: (device loss scalar,
        caches)."""
        p = self.params
        x = self.note_inputs(S, P)
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
        self.kernel("output_loss", "output_loss_backward")((blocks(M, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
                                                           (P, y, d, np.int32(M)))
        return d

    def pitch_to_time(self, d, B, Ht):
        """(78, B*L, Hw) -> its first Ht columns in the time layout (L, B*78, Ht)."""
        N, R, Hw = d.shape
        L = R // B
        out = self.cp.empty((L, B * N_NOTES, Ht), self.cp.float32)
        self.kernel("layout", "pitch_to_time")((blocks(out.size, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
                                               (self.cp.ascontiguousarray(d), out, np.int32(B), np.int32(L),
                                                np.int32(Ht), np.int32(Hw)))
        return out

    def device_gradients(self, S, positions, masks):
        """(device loss scalar, self.grads) of a device batch S (B, T, 78, 2) with bar positions
        (B, T), device masks or None."""
        loss, (caches, x, P, y) = self.device_forward(S, positions, masks)
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

    # ------------------------------------------------------------------ the backend interface

    def gemm_precision(self):
        """The context of every GEMM of a forward or backward pass: TF32 when self.tf32."""
        on_gpu = hasattr(self.cp, "cuda")  # not on the harness's NumPy arrays
        return cublas_tf32(self.cp) if self.tf32 and on_gpu else contextlib.nullcontext()

    def loss(self, batch, masks=None, positions=None):
        with self.gemm_precision():
            return float(self.device_forward(*self.to_device(batch, positions), self.device_masks(masks))[0])

    def activations(self, batch, positions=None):
        """(loss, {"time.k" / "pitch.k": (B, T-1, 78, H), "probabilities": (B, T-1, 78, 2)}) on
        the host, without dropout: the hidden outputs the forward pass keeps anyway."""
        with self.gemm_precision():
            loss, (caches, _, P, _) = self.device_forward(*self.to_device(batch, positions))
        outputs = {name: cache[1] for name, cache in caches.items()}  # cache[1]: every step's h
        acts = ref.activations_by_piece(outputs, P, batch.shape[0])
        return float(loss), {name: np.ascontiguousarray(to_host(a)) for name, a in acts.items()}

    def gradients(self, batch, masks, positions=None):
        """(loss, {name: gradient view}): the arrays are the optimiser's buffer, overwritten by
        the next call. masks: numpy or device arrays, or None."""
        with self.gemm_precision():
            loss, grads = self.device_gradients(*self.to_device(batch, positions), self.device_masks(masks))
        return float(loss), grads

    def device_masks(self, masks):
        """Masks (numpy or device arrays) as contiguous float32 device arrays; None or {} as given."""
        cp = self.cp
        return {k: cp.ascontiguousarray(cp.asarray(v, dtype=cp.float32)) for k, v in masks.items()} if masks else masks

    def train_step(self, batch, masks, reduce=None, positions=None):
        """Forward, backward and Adadelta of a host batch: the loss (one sync). reduce(flat
        gradient buffer, loss) -> loss runs between the backward pass and the update."""
        self.state.adopt()
        loss, _ = self.gradients(batch, masks, positions)
        if reduce is not None:
            loss = reduce(self.state.flat["grad"], loss)
        self.adadelta()
        return loss

    def segment_sq_norms(self):
        """(n_seg,) float64 device array: each clipping segment's squared gradient norm, one launch."""
        cp, flat, offsets = self.cp, self.state.flat, self.state.segment_offsets
        n_seg = offsets.size - 1
        sq = cp.empty(n_seg, cp.float64)
        self.kernel("adadelta", "segment_sq_norms")((n_seg,), (NORM_THREADS,), (flat["grad"], offsets, sq))
        return sq

    def gradient_sq_norms(self):
        """(n_seg,) float64 host array: the squared norm of each clipping segment of the gradient
        buffer (what adadelta clips by; the buffer itself is never clipped in place)."""
        return np.asarray(to_host(self.segment_sq_norms()), np.float64)

    def adadelta(self):
        """Clip per segment and update every parameter from self.grads: two launches."""
        flat, offsets = self.state.flat, self.state.segment_offsets
        n_seg = offsets.size - 1
        sq = self.segment_sq_norms()
        n = flat["param"].size
        self.kernel("adadelta", "adadelta_update")(
            (blocks(n, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
            (flat["param"], flat["grad"], flat["Eg"], flat["Ex"], offsets, sq,
             np.int32(n_seg), np.int32(n), np.float32(ADADELTA_RHO), np.float32(ADADELTA_EPS), np.float32(CLIP_NORM)))

    def dropout_masks(self, B, T, p, rng):
        """Every mask of a batch from one seed drawn from rng (so runs resume exactly):
        kernels/dropout.cu, one launch; views of one flat buffer, element order = layer order."""
        seed = int(rng.integers(2**63))
        shapes = mask_shapes(self.config, B, T)
        flat = self.cp.empty(flat_size(shapes), self.cp.float32)
        p32 = np.float32(p)
        self.kernel("dropout", "dropout_mask_hash")(
            (blocks(flat.size, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
            (np.uint64(seed), flat, np.int32(flat.size), p32, np.float32(1) / (np.float32(1) - p32)))
        return flat_views(flat, shapes)

    def parameters_finite(self):
        self.state.adopt()
        return bool(self.cp.isfinite(self.state.flat["param"]).all())

    def compose(self, seeds, steps, conservativity, adaptive, uniforms, positions):
        """seeds (K, 78, 2) uint8, uniforms (K, steps, 78, 2) float64, positions (K, steps) int32
        -> ComposeTrace, on the device."""
        return DeviceGenerator(self).compose(seeds, steps, conservativity, adaptive, uniforms, positions)
