"""The NumPy reference of every kernel: the executable form of MODEL_SPEC sections 2-5.

Each public function under a kernel's name is the twin of that `extern "C"` kernel in
kernels/*.cu: the same inputs and outputs, shapes and layouts, in float32 or float64 (gradient
checks). One test file per .cu file (tests/test_kernels_<file>.py) runs kernel against twin on
the CPU harness. The twins, by kernel file:

  features.cu     note_inputs, note_inputs_at
  layout.cu       pitch_inputs, pitch_targets, pitch_to_time
  lstm.cu         lstm_step_forward, lstm_step_backward, lstm_step_forward_tf32,
                  lstm_step_backward_tf32 (the kernels also multiply h by the dropout mask:
                  h * mask, written to h_out)
  output_loss.cu  output_loss_forward (P and the loss; the kernel leaves per-block partial sums
                  that the host adds), output_loss_backward
  dropout.cu      dropout_mask_hash
  adadelta.cu     segment_sq_norms, adadelta_update
  sample.cu       pitch_sweep (compiled by numba, from backends/pitch_sweep.py: a loop of 78
                  dependent steps)

The rest composes them into layers (lstm_layer_forward / lstm_layer_backward: the host's step
loops and GEMMs), which backends/numpy_backend.py composes into the model.

Layouts (the CUDA backend uses the same):
- time stack:  sequence-major (L = T-1 steps, R = B*78 rows, features), row r = b*78 + n.
- pitch stack: sequence-major (L = 78 notes, R = B*(T-1) rows, features), row r = b*(T-1) + t.
- LSTM weights W (4H, I+H): gate blocks of H rows in the order i, f, g, o; columns [x, h_prev].
  The input part of all steps is one GEMM (xproj = x W_x^T + b); only the recurrent part
  (h_prev W_h^T) runs step by step. Weight gradients are large GEMMs over all steps, after the
  step loop, never per step.
"""
import numpy as np

from .. import features
from ..common import ADADELTA_EPS, ADADELTA_RHO, CLIP_NORM, N_NOTES
from .pitch_sweep import pitch_sweep  # noqa: F401  (sample.cu's twin, compiled by numba)

EPS_LOSS = 2.0 ** -23


# ----------------------------------------------------------------------------- elementwise


def sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives the right 0
        return 1.0 / (1.0 + np.exp(-x))


def cell_act(x, act):
    """The activation of the candidate g: identity (the original's) or tanh."""
    return x if act == "identity" else np.tanh(x)


def cell_act_grad(g, act):
    """d act / d pre, written in terms of the output g."""
    return np.ones_like(g) if act == "identity" else 1.0 - g * g


def round_tf32(x):
    """x rounded to TF32 as the tensor-core kernels round their operands (cvt.rna.tf32.f32: 10
    mantissa bits, to nearest, ties away from zero; NaN and Inf unchanged), as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    finite = (u & 0x7F800000) != 0x7F800000
    return np.where(finite, (u + np.uint32(0x1000)) & np.uint32(0xFFFFE000), u).astype(np.uint32).view(np.float32)


# ----------------------------------------------------------------------------- LSTM step


def lstm_step_forward(xproj_t, h_prev, c_prev, W_h, act):
    """One step of an LSTM layer for R independent rows.

    xproj_t (R, 4H): x_t W_x^T + b (precomputed for all steps); h_prev, c_prev (R, H);
    W_h (4H, H). Returns h (R, H), c (R, H), gates (R, 4H): activated i, f, g, o.
    """
    H = h_prev.shape[1]
    pre = xproj_t + h_prev @ W_h.T  # (R, 4H)
    i = sigmoid(pre[:, 0 * H:1 * H])
    f = sigmoid(pre[:, 1 * H:2 * H])
    g = cell_act(pre[:, 2 * H:3 * H], act)
    o = sigmoid(pre[:, 3 * H:4 * H])
    c = f * c_prev + i * g  # (R, H)
    h = o * np.tanh(c)  # (R, H)
    return h, c, np.concatenate([i, f, g, o], axis=1)


def lstm_step_backward(dh_above, dpre_next, dc_next, gates, c, c_prev, W_h, act):
    """Backward of lstm_step_forward, as kernels/lstm.cu computes it.

    dh_above (R, H): gradient reaching h from above; dpre_next (R, 4H) or None: the next step's
    gate gradients, which reach h through the recurrence (dpre_next W_h); dc_next (R, H): from
    the next step's cell. Returns dpre (R, 4H) (gradient of the gate pre-activations, that is
    of xproj_t) and dc_prev (R, H).
    """
    H = dh_above.shape[1]
    dh = dh_above if dpre_next is None else dh_above + dpre_next @ W_h  # (R, H)
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    tanh_c = np.tanh(c)
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)  # (R, H)
    dpre = np.concatenate([
        dc * g * i * (1.0 - i),
        dc * c_prev * f * (1.0 - f),
        dc * i * cell_act_grad(g, act),
        dh * tanh_c * o * (1.0 - o),
    ], axis=1)  # (R, 4H)
    return dpre, dc * f


def lstm_step_forward_tf32(xproj_t, h_prev, c_prev, W_h, act):
    """lstm_step_forward with the recurrent product's operands rounded to TF32, as the tensor-core
    kernel multiplies them (products exact, sums in float)."""
    return lstm_step_forward(xproj_t, round_tf32(h_prev).astype(xproj_t.dtype), c_prev,
                             round_tf32(W_h).astype(xproj_t.dtype), act)


def lstm_step_backward_tf32(dh_above, dpre_next, dc_next, gates, c, c_prev, W_h, act):
    """lstm_step_backward with dpre_next and W_h rounded to TF32 (the recurrent product's operands)."""
    dtype = dh_above.dtype
    return lstm_step_backward(dh_above, None if dpre_next is None else round_tf32(dpre_next).astype(dtype),
                              dc_next, gates, c, c_prev, round_tf32(W_h).astype(dtype), act)


# ----------------------------------------------------------------------------- LSTM layer


def lstm_layer_forward(x, W, b, act):
    """x (L, R, I) -> h (L, R, H) and the cache the backward pass needs."""
    L, R, I = x.shape
    H = W.shape[0] // 4
    W_x, W_h = W[:, :I], W[:, I:]
    xproj = x @ W_x.T + b  # (L, R, 4H): one GEMM for all steps
    h_all = np.empty((L, R, H), dtype=x.dtype)
    c_all = np.empty((L, R, H), dtype=x.dtype)
    gates_all = np.empty((L, R, 4 * H), dtype=x.dtype)
    h = np.zeros((R, H), dtype=x.dtype)
    c = np.zeros((R, H), dtype=x.dtype)
    for t in range(L):
        h, c, gates_all[t] = lstm_step_forward(xproj[t], h, c, W_h, act)
        h_all[t], c_all[t] = h, c
    return h_all, (x, h_all, c_all, gates_all)


def lstm_layer_backward(dh_all, cache, W, act):
    """dh_all (L, R, H): gradient reaching each step's h from above.

    Returns dx (L, R, I), dW (4H, I+H), db (4H,).
    """
    x, h_all, c_all, gates_all = cache
    L, R, I = x.shape
    H = W.shape[0] // 4
    W_x, W_h = W[:, :I], W[:, I:]
    dpre_all = np.empty((L, R, 4 * H), dtype=x.dtype)
    dc = np.zeros((R, H), dtype=x.dtype)
    zeros = np.zeros((R, H), dtype=x.dtype)
    for t in range(L - 1, -1, -1):
        c_prev = c_all[t - 1] if t > 0 else zeros
        dpre_next = dpre_all[t + 1] if t + 1 < L else None
        dpre_all[t], dc = lstm_step_backward(dh_all[t], dpre_next, dc, gates_all[t], c_all[t],
                                             c_prev, W_h, act)
    h_prev_all = np.concatenate([zeros[None], h_all[:-1]], axis=0)  # (L, R, H)
    dpre_flat = dpre_all.reshape(L * R, 4 * H)
    dW = np.concatenate([dpre_flat.T @ x.reshape(L * R, I),
                         dpre_flat.T @ h_prev_all.reshape(L * R, H)], axis=1)  # (4H, I+H)
    return dpre_all @ W_x, dW, dpre_flat.sum(axis=0)


# ----------------------------------------------------------------------------- dropout


def dropout_mask_hash(seed, n, p):
    """kernels/dropout.cu's masks, bit for bit: (n,) float32, element i kept (= 1 / (1 - p)) when
    the top 24 bits of splitmix64(seed + (i + 1) * golden) as a fraction are >= p."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float32) * np.float32(1 / 16777216)
    p32 = np.float32(p)
    scale = np.float32(1) / (np.float32(1) - p32)
    return np.where(u >= p32, scale, np.float32(0))


def dropout_mask(rng, rows, H, p, dtype):
    """(rows, H) inverted-dropout mask: 0 or 1/(1-p), one per sequence row for all steps."""
    keep = rng.random((rows, H)) >= p
    return (keep / (1.0 - p)).astype(dtype)


# ----------------------------------------------------------------------------- features (features.cu)


def segment_positions(B, T):
    """(B, T) int32: the original's bar positions of a batch, each step's index in its segment."""
    return np.tile(np.arange(T, dtype=np.int32), (B, 1))


def note_inputs(S, P, dtype=np.float32):
    """S (B, T, 78, 2), P (B, T) bar positions -> (T-1, B*78, 80): the features
    (features.note_inputs_at) of steps 0..T-2 of every piece, in the time stack's layout."""
    B, T = S.shape[:2]
    steps = np.asarray(P)[:, :-1].reshape(-1)  # (B*(T-1),) bar position of each state
    X = features.note_inputs_at(S[:, :-1].reshape(B * (T - 1), N_NOTES, 2), steps, dtype=dtype)
    return np.ascontiguousarray(X.reshape(B, T - 1, N_NOTES, -1).transpose(1, 0, 2, 3)).reshape(T - 1, B * N_NOTES, -1)


def note_inputs_at(states, P, dtype=np.float32):
    """states (K, 78, 2), P (K,) each piece's bar position -> (K*78, 80): one generation step's
    features."""
    return features.note_inputs_at(states, np.asarray(P), dtype=dtype).reshape(-1, features.N_FEATURES)


# ----------------------------------------------------------------------------- layouts (layout.cu)


def pitch_inputs(time_out, S):
    """The pitch stack's input (teacher forcing).

    time_out (T-1, B*78, Ht): last time layer's (dropped) output; S (B, T, 78, 2): the batch.
    Returns (78, B*(T-1), Ht+2): [time output of note n at step t, target S[t+1] of note n-1
    ([0,0] for n=0)].
    """
    L, R, Ht = time_out.shape
    B = R // N_NOTES
    h = time_out.reshape(L, B, N_NOTES, Ht).transpose(2, 1, 0, 3)  # (78, B, T-1, Ht)
    prev = np.zeros((N_NOTES, B, L, 2), dtype=time_out.dtype)
    prev[1:] = S[:, 1:].transpose(2, 0, 1, 3)[:-1]  # (77, B, T-1, 2)
    return np.concatenate([h, prev], axis=3).reshape(N_NOTES, B * L, Ht + 2)


def pitch_targets(S, dtype=np.float32):
    """S (B, T, 78, 2) -> the targets S[:, 1:] in the pitch stack's layout (78, B*(T-1), 2)."""
    B, T = S.shape[:2]
    return np.ascontiguousarray(S[:, 1:].transpose(2, 0, 1, 3), dtype=dtype).reshape(N_NOTES, B * (T - 1), 2)


def pitch_to_time(d, B, Ht):
    """The first Ht columns of d (78, B*(T-1), Hw) in the time layout (T-1, B*78, Ht): the inverse
    transpose of pitch_inputs' time part."""
    N, R, _ = d.shape
    L = R // B
    d = d[:, :, :Ht].reshape(N, B, L, Ht).transpose(2, 1, 0, 3)  # (T-1, B, 78, Ht)
    return np.ascontiguousarray(d).reshape(L, B * N, Ht)


def time_to_pieces(x, B):
    """(T-1, B*78, H) time layout -> (B, T-1, 78, H)."""
    L, _, H = x.shape
    return x.reshape(L, B, N_NOTES, H).transpose(1, 0, 2, 3)


def pitch_to_pieces(x, B):
    """(78, B*(T-1), H) pitch layout -> (B, T-1, 78, H)."""
    N, R, H = x.shape
    return x.reshape(N, B, R // B, H).transpose(1, 2, 0, 3)


def activations_by_piece(outputs, P, B):
    """{"time.k" / "pitch.k": every step's h in its stack's layout} and P (78, B*(T-1), 2) ->
    {name: (B, T-1, 78, H), "probabilities": (B, T-1, 78, 2)}: views, numpy or device arrays."""
    acts = {name: (time_to_pieces if name.startswith("time") else pitch_to_pieces)(h, B)
            for name, h in outputs.items()}
    acts["probabilities"] = pitch_to_pieces(P, B)
    return acts


# ----------------------------------------------------------------------------- output + loss (output_loss.cu)


def note_likelihoods(P, y):
    """The two factors of MODEL_SPEC 4's likelihood, each with EPS_LOSS added:
    P(play matches y0) and P(articulate matches y1). P, y (..., 2) -> two (...) arrays."""
    P0, P1, y0, y1 = P[..., 0], P[..., 1], y[..., 0], y[..., 1]
    return 2 * P0 * y0 - P0 - y0 + 1 + EPS_LOSS, 2 * P1 * y1 - P1 - y1 + 1 + EPS_LOSS


def summed_loss(P, y):
    """-sum log likelihood (MODEL_SPEC 4) of probabilities P against targets y, in float64."""
    l0, l1 = note_likelihoods(P, y)
    return -float(np.sum(np.log(l0) + y[..., 0] * np.log(l1), dtype=np.float64))


def output_loss_forward(h, W, b, y):
    """h (..., Hp), W (2, Hp), b (2,), y (..., 2) in {0,1}.

    Returns P (..., 2) = sigmoid(h W^T + b) and the summed loss (MODEL_SPEC 4) as a float,
    accumulated in float64.
    """
    P = sigmoid(h @ W.T + b)  # (..., 2)
    return P, summed_loss(P, y)


def output_loss_backward(P, y):
    """Gradient of the summed loss wrt the output logits: (..., 2)."""
    P0, P1, y0, y1 = P[..., 0], P[..., 1], y[..., 0], y[..., 1]
    l0, l1 = note_likelihoods(P, y)
    dP0 = -(2 * y0 - 1) / l0
    dP1 = -y0 * (2 * y1 - 1) / l1
    return np.stack([dP0 * P0 * (1 - P0), dP1 * P1 * (1 - P1)], axis=-1).astype(P.dtype)


# ----------------------------------------------------------------------------- optimiser (adadelta.cu)


def segment_sq_norms(g, offsets):
    """g (n,) flat gradients, offsets (n_seg + 1,) -> (n_seg,) float64: each segment's squared
    L2 norm (segments: params.segment_offsets, one per gate block, MODEL_SPEC 5)."""
    return np.array([np.sum(g[a:b].astype(np.float64) ** 2) for a, b in zip(offsets[:-1], offsets[1:])])


def adadelta_update(w, g, Eg, Ex, offsets, sq, rho=ADADELTA_RHO, eps=ADADELTA_EPS, max_norm=CLIP_NORM):
    """One Adadelta step (MODEL_SPEC 5) in place on the flat w, Eg, Ex (n,), after clipping each
    segment of g to L2 norm max_norm (sq: segment_sq_norms; a zero segment stays zero)."""
    norm = np.sqrt(sq)  # (n_seg,) float64
    scale = np.where(norm > 0, np.minimum(max_norm, norm) / np.where(norm > 0, norm, 1), 1.0)
    g = g * np.repeat(scale.astype(g.dtype), np.diff(offsets))  # clipped (n,)
    Eg *= rho
    Eg += (1 - rho) * g * g
    d = -np.sqrt((Ex + eps) / (Eg + eps)) * g
    Ex *= rho
    Ex += (1 - rho) * d * d
    w += d
