"""pitch_sweep: the twin of kernels/sample.cu's pitch_sweep, compiled by numba (a Python loop of
78 dependent decisions per step would be far too slow for the CPU generator, which runs it).

One call runs the pitch stack over the 78 notes of one generation step for K pieces, sampling
each note's (play, articulate) as it goes (MODEL_SPEC 7), then updates each piece's adaptive
conservativity. Exactness contract with the kernel: every dot product adds its terms in order
(input columns, then recurrent columns, m = 0, 1, ...; no reassociation, no fastmath, and the
kernel has no fused multiply-adds), arithmetic in the weights' dtype with the reference cell's
formulas, and the sampling rule in float64:
    play = U1 < P0 ** cons (IEEE pow: 0 ** 0 = 1, 0 ** negative = inf),   artic = play and U2 < P1.
The weights are laid out as params.HostWeights; the inner loops run over the 4H gate
rows of transposed weights (contiguous, SIMD-friendly) with each gate's sum still in order.
"""
import numpy as np
from numba import njit

from ..common import N_NOTES

CONSERVATIVITY_STEP_DOWN = 0.02  # fewer than MIN_NOTES_PLAYING notes: min(cons, 1) - 0.02
CONSERVATIVITY_PULL_UP = 0.3  # otherwise cons + (1 - cons) * 0.3
MIN_NOTES_PLAYING = 2


@njit(cache=True)
def _sigmoid(x, one):
    return one / (one + np.exp(-x))


@njit(cache=True)
def _cell_update(gates, H, c, h, tanh_cell, one):
    """gates (4H,) pre-activations i, f, g, o -> c (H,), h (H,) updated in place."""
    for m in range(H):
        input_gate = _sigmoid(gates[m], one)
        forget_gate = _sigmoid(gates[H + m], one)
        cell_input = np.tanh(gates[2 * H + m]) if tanh_cell else gates[2 * H + m]
        output_gate = _sigmoid(gates[3 * H + m], one)
        c[m] = forget_gate * c[m] + input_gate * cell_input
        h[m] = output_gate * np.tanh(c[m])


@njit(cache=True)
def _add_matvec(gates, G, wT, at, n_in, x):
    """gates[:G] += W x with W^T (n_in, G) stored flat from wT[at]; terms added in order of x.

    The 2-D view makes every index provably non-negative, so LLVM vectorises the j loop."""
    w = wT[at:at + n_in * G].reshape((n_in, G))  # (n_in, G) view
    for m in range(n_in):
        xm = x[m]
        for j in range(G):
            gates[j] += w[m, j] * xm


@njit(cache=True)
def _threshold(p0, cons):
    """P0 ** cons in float64 with IEEE pow's special cases at 0 (no exception)."""
    if p0 == 0.0:
        if cons > 0.0:
            return 0.0
        if cons == 0.0:
            return 1.0
        return np.inf
    return p0 ** cons


@njit(cache=True)
def pitch_sweep(pitch0_in, prev_wT, sizes, wxT, wx_at, whT, wh_at, biases, b_at, out_wT, out_b,
                uniforms, cons, choices, probabilities, tanh_cell, adaptive, one):
    """The kernel's arguments, in its order (n_layers is sizes' length):

    pitch0_in (K, 78, 4H0): time-output part of pitch layer 0's projection plus its bias;
    prev_wT (2, 4H0); the other layers' weights flat as in HostWeights; out_wT (H_last, 2);
    out_b (2,); uniforms (K, 78, 2) float64; cons (K,) float64, updated in place when adaptive.
    Writes choices (K, 78, 2) uint8 and probabilities (K, 78, 2). one: 1 in the weights' dtype
    (keeps numba's float32 arithmetic float32).
    """
    n_pieces = pitch0_in.shape[0]
    n_layers = sizes.shape[0]
    prev_w = prev_wT.ravel()  # (2 * 4H0,)
    width = 0
    for layer in range(n_layers):
        width = max(width, sizes[layer])
    gates = np.zeros(4 * width, dtype=pitch0_in.dtype)  # (4Hmax,)
    hidden = np.zeros((n_layers, width), dtype=pitch0_in.dtype)  # (L, Hmax)
    cells = np.zeros((n_layers, width), dtype=pitch0_in.dtype)  # (L, Hmax)
    prev = np.zeros(2, dtype=pitch0_in.dtype)  # (2,) previous note's (play, articulate)
    logits = np.zeros(2, dtype=pitch0_in.dtype)  # (2,)
    last = n_layers - 1
    for k in range(n_pieces):
        hidden[:] = 0
        cells[:] = 0
        prev[:] = 0
        playing = 0
        for n in range(N_NOTES):
            for layer in range(n_layers):
                H = sizes[layer]
                G = 4 * H
                if layer == 0:
                    for j in range(G):
                        gates[j] = pitch0_in[k, n, j]
                    _add_matvec(gates, G, prev_w, 0, 2, prev)
                else:
                    for j in range(G):
                        gates[j] = biases[b_at[layer] + j]
                    _add_matvec(gates, G, wxT, wx_at[layer], sizes[layer - 1], hidden[layer - 1])
                _add_matvec(gates, G, whT, wh_at[layer], H, hidden[layer])
                _cell_update(gates, H, cells[layer], hidden[layer], tanh_cell, one)
            H = sizes[last]
            for q in range(2):
                logits[q] = out_b[q]
            for m in range(H):
                for q in range(2):
                    logits[q] += out_wT[m, q] * hidden[last, m]
            p_play = _sigmoid(logits[0], one)
            p_artic = _sigmoid(logits[1], one)
            probabilities[k, n, 0] = p_play
            probabilities[k, n, 1] = p_artic
            play = uniforms[k, n, 0] < _threshold(np.float64(p_play), cons[k])
            artic = play and uniforms[k, n, 1] < np.float64(p_artic)
            choices[k, n, 0] = 1 if play else 0
            choices[k, n, 1] = 1 if artic else 0
            prev[0] = 1 if play else 0
            prev[1] = 1 if artic else 0
            playing += 1 if play else 0
        if adaptive:  # MODEL_SPEC 7, in float64
            if playing < MIN_NOTES_PLAYING:
                cons[k] = min(cons[k], 1.0) - CONSERVATIVITY_STEP_DOWN
            else:
                cons[k] = cons[k] + (1.0 - cons[k]) * CONSERVATIVITY_PULL_UP
