"""DeviceGenerator: compose on the device (MODEL_SPEC 7), the cuda backend's twin of
numpy_backend.compose_host. Per step: note_inputs_at (features.cu), per time layer one cuBLAS
GEMM for the input projection and one lstm_step_forward launch, one GEMM for the time part of
pitch layer 0, then ONE pitch_sweep launch (sample.cu) for the 78 notes of every piece, which
also samples and updates the adaptive conservativity. The weights are params.HostWeights,
uploaded once.
"""
import numpy as np

from ...common import N_FEATURES, N_NOTES, ComposeTrace, to_host
from ...params import host_weights
from .kernels import FEATURE_THREADS, blocks, lstm_forward_launch

MAX_PITCH_LAYERS, MAX_PITCH_H = 4, 256  # sample.cu's shared-memory arrays


class DeviceGenerator:
    def __init__(self, backend):
        """backend: a CudaBackend (its params, array module and kernels)."""
        cp = self.cp = backend.cp
        self.backend = backend
        weights = self.w = host_weights(backend.params, backend.config["cell_activation"])
        up = lambda a: cp.asarray(np.ascontiguousarray(a))  # noqa: E731
        self.time_layers = [(up(W_x), up(W_h), up(b)) for W_x, W_h, b in weights.time_layers]
        self.pitch0_time_wT, self.pitch0_b = up(weights.pitch0_time_wT), up(weights.pitch0_b)
        self.sweep_args = [up(weights.pitch0_prev_wT), up(weights.pitch_sizes), up(weights.pitch_wxT),
                           up(weights.pitch_wx_at), up(weights.pitch_whT), up(weights.pitch_wh_at),
                           up(weights.pitch_b), up(weights.pitch_b_at), up(weights.out_wT), up(weights.out_b)]
        sizes = [int(s) for s in weights.pitch_sizes]
        if len(sizes) > MAX_PITCH_LAYERS or max(sizes) > MAX_PITCH_H:
            raise ValueError(f"device generation supports at most {MAX_PITCH_LAYERS} pitch layers of at "
                             f"most {MAX_PITCH_H} units")
        self.n_pitch_layers = len(sizes)
        self.sweep_threads = 32 * -(-4 * max(sizes) // 32)

    def compose(self, seeds, steps, conservativity, adaptive, uniforms, positions):
        """seeds (K, 78, 2) uint8, uniforms (K, steps, 78, 2) float64, positions (K, steps) int32
        -> ComposeTrace (host arrays)."""
        cp, kern = self.cp, self.backend.kernel
        K = seeds.shape[0]
        R = K * N_NOTES
        states = cp.zeros((steps + 1, K, N_NOTES, 2), cp.uint8)  # step-major: each step contiguous
        states[0] = cp.asarray(seeds)
        probabilities = cp.zeros((steps, K, N_NOTES, 2), cp.float32)
        U = cp.asarray(np.ascontiguousarray(np.moveaxis(uniforms, 1, 0)))  # (steps, K, 78, 2)
        P = cp.asarray(np.ascontiguousarray(np.asarray(positions, np.int32).T))  # (steps, K)
        cons = cp.zeros((steps + 1, K), cp.float64)  # row t: the value used at step t
        cons[0] = conservativity
        # per time layer, slots 0 (previous step) and 1 (this step) of what the training kernel
        # keeps per step: gates (2, R, 4H) (xproj, then the gates), h and c (2, R, H)
        sizes = [W_h.shape[1] for _, W_h, _ in self.time_layers]
        gates = [cp.empty((2, R, 4 * H), cp.float32) for H in sizes]
        h = [cp.zeros((2, R, H), cp.float32) for H in sizes]
        c = [cp.zeros((2, R, H), cp.float32) for H in sizes]
        X = cp.empty((R, N_FEATURES), cp.float32)
        act = np.int32(self.w.tanh_cell)
        step = kern("lstm", "lstm_step_forward")
        launches = [lstm_forward_launch(R, H) for H in sizes]
        unused = self.backend.unused
        for t in range(steps):
            kern("features", "note_inputs_at")((blocks(R, FEATURE_THREADS),), (FEATURE_THREADS,),
                                               (states[t], P[t], X, np.int32(K)))
            x = X
            for layer, (W_x, W_h, b) in enumerate(self.time_layers):
                H = sizes[layer]
                cp.matmul(x, W_x.T, out=gates[layer][1])  # (R, 4H)
                gates[layer][1] += b
                step(*launches[layer], (gates[layer], h[layer], c[layer], W_h, unused, unused,
                                        np.int32(R), np.int32(H), act, np.int32(0), np.int32(1)))
                x = h[layer][1]
            pitch0_in = x @ self.pitch0_time_wT + self.pitch0_b  # (R, 4H0)
            cons[t + 1] = cons[t]  # the sweep updates row t + 1 in place when adaptive
            kern("sample", "pitch_sweep")(
                (K,), (self.sweep_threads,),
                (pitch0_in, *self.sweep_args, U[t], cons[t + 1], states[t + 1], probabilities[t],
                 np.int32(self.n_pitch_layers), act, np.int32(adaptive)))
            for layer in range(len(sizes)):  # this step's state becomes the previous one
                h[layer][0] = h[layer][1]
                c[layer][0] = c[layer][1]
        host = lambda a: np.ascontiguousarray(np.moveaxis(to_host(a), 0, 1))  # noqa: E731  step-major -> piece-major
        return ComposeTrace(states=host(states), probabilities=host(probabilities), conservativity=host(cons))
