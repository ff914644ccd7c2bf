"""Generation: compose new music with a trained model (MODEL_SPEC.md section 7).

compose(model, seed_state, steps) starts from one state S[0] (the seed, step index 0) and
produces S[1..steps]. Each step t:

  1. time stack, one step: features(S[t], t) (78, 80) -> every time LSTM layer advances its
     78 rows (one per note) by one step; the last layer's h is the time output (78, Ht).
  2. pitch stack over notes n = 0..77, one note after the other: note n's input is
     [time output of note n, chosen (play, articulate) of note n-1] ([0, 0] for n = 0);
     the output layer gives P = (P(play), P(articulate | play)) and the choice is
         play = U1 < P0 ** cons,   articulate = play and U2 < P1,
     with U1 = U[t, n, 0], U2 = U[t, n, 1] uniforms in [0, 1).
  3. adaptive conservativity (per piece): fewer than 2 notes playing -> cons = min(cons, 1)
     - 0.02, else cons += (1 - cons) * 0.3 (next_conservativity).

Design (CPU path, the numpy backend):
- K pieces are composed side by side; piece k depends only on its seed and its uniforms.
  The time stack is plain NumPy, one piece at a time (so every GEMM has exactly 78 rows and
  a piece comes out the same whether it is composed alone or in a batch), reusing the
  reference LSTM cell (backends.reference.lstm_step_forward) with W split into the input
  columns W_x and the recurrent columns W_h.
- The pitch stack is 78 dependent decisions per step: a numba @njit loop (_pitch_sweep).
  Pitch layer 0's input is [time output, previous note]; the time-output part of its
  projection (plus the bias) is known for all 78 notes before the loop, so one GEMM per piece
  computes it and the loop only adds the 2 previous-note columns and the recurrent part.
  The loop keeps weights transposed (in, 4H) so that the inner loop runs over the 4H gate
  rows (contiguous, SIMD-friendly) while each gate's dot product still sums its terms in
  order m = 0, 1, ... (no reassociation, no fastmath).
- Arithmetic is in the model's dtype (float32 by default; float64 works too), with the
  reference cell's formulas: sigmoid(x) = 1 / (1 + exp(-x)), c = f*c_prev + i*g,
  h = o*tanh(c). Summation order inside dot products differs from NumPy's BLAS, so
  probabilities agree with a plain-NumPy forward to rounding (about 1e-6 relative in
  float32), not bit for bit.
- The sampling rule is evaluated in float64: P0 and P1 (model dtype) are widened exactly,
  the threshold is P0 ** cons with IEEE pow (0 ** 0 = 1, 0 ** negative = inf: adaptive
  conservativity may go to 0 or below after a long silence, and then every note plays,
  which breaks the silence as in the original), and the comparisons use float64 uniforms.
  cons is a float64 per piece. Every backend must use this same rule so that the same
  uniforms give the same composition.
- Other backends: a model whose backend is not "numpy" and that has a method
  _compose_device(seeds (K, 78, 2) uint8, steps, *, conservativity, adaptive,
  uniforms (K, steps, 78, 2) float64) -> (K, steps + 1, 78, 2) uint8 gets the work (inputs
  already validated, uniforms already drawn here, so the random stream is the same for all
  backends). Without that method the CPU path runs on host copies of the parameters
  (cupy arrays -> .get()).
- No dropout at generation (inverted dropout needs no rescaling at inference).
"""
from dataclasses import dataclass

import numpy as np
from numba import njit

from .features import note_inputs_at

N_NOTES = 78
N_FEATURES = 80
SEGMENT_LEN = 128  # a training segment (MODEL_SPEC section 6); seeds are step 0 of one
CONSERVATIVITY_STEP_DOWN = 0.02
CONSERVATIVITY_PULL_UP = 0.3
MIN_NOTES_PLAYING = 2
CELL_ACTIVATIONS = ("identity", "tanh")


# ----------------------------------------------------------------------------- public


def compose(model, seed_state, steps, *, conservativity=1.0, adaptive=True, rng=None,
            uniforms=None):
    """Compose `steps` new states after `seed_state` (MODEL_SPEC section 7).

    seed_state: (78, 2) of 0/1 -> returns (steps + 1, 78, 2) uint8, row 0 the seed;
                (K, 78, 2)     -> returns (K, steps + 1, 78, 2) uint8, piece k the same as
                                  compose of seed k alone with uniforms[k].
    steps: int >= 0. conservativity: starting value, a finite number > 0 (1 = sample the
    model's probabilities as they are; higher = fewer, surer notes). adaptive: update it
    after every step (next_conservativity); False keeps it fixed.
    uniforms: (steps, 78, 2) (or (K, steps, 78, 2)) numbers in [0, 1): U[t, n, 0] decides
    note n's play at step t, U[t, n, 1] its articulate. If None they are drawn from rng
    (a numpy Generator, an int seed or None for fresh entropy) as rng.random(shape).
    """
    seeds, single, steps, conservativity, adaptive, uniforms = _check_arguments(
        seed_state, steps, conservativity, adaptive, rng, uniforms)
    n_pieces = seeds.shape[0]
    if getattr(model, "backend", "numpy") != "numpy" and hasattr(model, "_compose_device"):
        pieces = model._compose_device(seeds, steps, conservativity=conservativity,
                                       adaptive=adaptive, uniforms=uniforms)
        pieces = _check_device_output(pieces, n_pieces, steps)  # (K, steps + 1, 78, 2)
    else:
        weights = host_weights(model)
        pieces = _compose_host(weights, seeds, steps, conservativity, adaptive, uniforms).states
    return pieces[0] if single else pieces


@dataclass
class ComposeTrace:
    """Everything compose_trace records, K pieces."""

    states: np.ndarray  # (K, steps + 1, 78, 2) uint8: seeds then generated states
    probabilities: np.ndarray  # (K, steps, 78, 2) model dtype: (P0, P1) behind state t + 1
    conservativity: np.ndarray  # (K, steps + 1) float64: the value used at step t (last: after)


def compose_trace(model, seed_states, steps, *, conservativity=1.0, adaptive=True, rng=None,
                  uniforms=None):
    """compose on the CPU for K seeds (K, 78, 2), also returning the probabilities the model
    gave and the conservativity used at each step (a ComposeTrace). Always the CPU path.
    A (78, 2) seed counts as K = 1 (uniforms then (steps, 78, 2), as for compose)."""
    seeds, _, steps, conservativity, adaptive, uniforms = _check_arguments(
        seed_states, steps, conservativity, adaptive, rng, uniforms)
    return _compose_host(host_weights(model), seeds, steps, conservativity, adaptive, uniforms)


def next_conservativity(conservativity, n_playing):
    """The adaptive rule (MODEL_SPEC section 7), for one piece or elementwise for arrays:
    fewer than 2 notes playing -> min(cons, 1) - 0.02; otherwise cons + (1 - cons) * 0.3.
    Computed in float64; returns a float for scalar inputs."""
    cons = np.asarray(conservativity, dtype=np.float64)
    quiet = np.asarray(n_playing) < MIN_NOTES_PLAYING
    lowered = np.minimum(cons, 1.0) - CONSERVATIVITY_STEP_DOWN
    raised = cons + (1.0 - cons) * CONSERVATIVITY_PULL_UP
    updated = np.where(quiet, lowered, raised)
    return float(updated) if updated.ndim == 0 else updated


def seed_from_pieces(pieces, rng=None, *, seq_len=SEGMENT_LEN):
    """The default seed: step 0 of a random training segment, (78, 2) uint8.

    A piece uniformly among those with at least seq_len steps (sorted keys), a start
    uniformly from range(0, T - seq_len + 1, 16): data.sample_batch's rule, one segment.
    pieces: a dict name -> (T, 78, 2) (as load_pieces returns) or a list of such arrays.
    rng: a numpy Generator, an int seed or None."""
    from .data import sample_batch  # data imports the MIDI reader; only needed here

    if isinstance(pieces, (list, tuple)):
        pieces = {f"{i:09d}": S for i, S in enumerate(pieces)}
    segment = sample_batch(pieces, batch_size=1, seq_len=seq_len, rng=_as_generator(rng))
    return segment[0, 0].copy()  # (78, 2)


def silent_seed():
    """The silent seed: no note playing, (78, 2) uint8."""
    return np.zeros((N_NOTES, 2), dtype=np.uint8)


# ----------------------------------------------------------------------------- weights


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


def host_weights(model):
    """Check a model's parameters (API.md names and shapes) and lay them out for generation.

    model: anything with .params (dict name -> numpy or cupy array) and optionally .config
    (dict with cell_activation). Raises ValueError naming the first inconsistent parameter."""
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise TypeError(f"model must have a .params dict of arrays, got {type(model).__name__}")
    config = getattr(model, "config", None) or {}
    activation = config.get("cell_activation", "identity")
    if activation not in CELL_ACTIVATIONS:
        raise ValueError(f"cell_activation must be one of {CELL_ACTIVATIONS}, got {activation!r}")
    host = {name: _to_host(value, name) for name, value in params.items()}
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
        dtype=dtype, tanh_cell=activation == "tanh", time_layers=time_layers,
        pitch0_time_wT=pitch0_time_wT, pitch0_b=pitch0_b, pitch0_prev_wT=pitch0_prev_wT,
        pitch_sizes=np.array(sizes, dtype=np.int64),
        pitch_wxT=_flat([np.zeros(0, dtype)] + wxT, dtype), pitch_wx_at=_offsets([0] + wxT),
        pitch_whT=_flat(whT, dtype), pitch_wh_at=_offsets(whT),
        pitch_b=_flat([np.zeros(0, dtype)] + biases, dtype), pitch_b_at=_offsets([0] + biases),
        out_wT=np.ascontiguousarray(out_W.T), out_b=out_b)


def _to_host(value, name):
    if hasattr(value, "get") and not isinstance(value, np.ndarray):  # cupy array
        value = value.get()
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


# ----------------------------------------------------------------------------- the CPU path


def _compose_host(weights, seeds, steps, conservativity, adaptive, uniforms):
    """seeds (K, 78, 2) uint8, uniforms (K, steps, 78, 2) float64 -> ComposeTrace."""
    from .backends.reference import lstm_step_forward

    n_pieces = seeds.shape[0]
    dtype = weights.dtype
    activation = "tanh" if weights.tanh_cell else "identity"
    states = np.zeros((n_pieces, steps + 1, N_NOTES, 2), dtype=np.uint8)  # (K, steps+1, 78, 2)
    states[:, 0] = seeds
    probabilities = np.zeros((n_pieces, steps, N_NOTES, 2), dtype=dtype)  # (K, steps, 78, 2)
    cons_used = np.zeros((n_pieces, steps + 1), dtype=np.float64)  # (K, steps+1)
    cons = np.full(n_pieces, conservativity, dtype=np.float64)  # (K,)
    # time-stack state per layer: h, c (K, 78, H)
    hidden = [np.zeros((n_pieces, N_NOTES, W_h.shape[1]), dtype=dtype)
              for _, W_h, _ in weights.time_layers]
    cells = [np.zeros_like(h) for h in hidden]
    pitch0_in = np.zeros((n_pieces, N_NOTES, weights.pitch0_b.shape[0]), dtype=dtype)  # (K, 78, 4H0)
    prev_wT = weights.pitch0_prev_wT.ravel()  # (2 * 4H0,) flat for _add_matvec
    one = dtype.type(1)  # 1 in the model's dtype, so numba keeps float32 arithmetic float32
    choices_t = np.zeros((n_pieces, N_NOTES, 2), dtype=np.uint8)  # (K, 78, 2)
    probabilities_t = np.zeros((n_pieces, N_NOTES, 2), dtype=dtype)  # (K, 78, 2)

    for t in range(steps):
        features = note_inputs_at(states[:, t], t, dtype=dtype)  # (K, 78, 80)
        for k in range(n_pieces):  # one piece at a time: every GEMM has 78 rows
            x = features[k]  # (78, 80)
            for layer, (W_x, W_h, b) in enumerate(weights.time_layers):
                xproj = x @ W_x.T + b  # (78, 4H)
                h, c, _ = lstm_step_forward(xproj, hidden[layer][k], cells[layer][k], W_h,
                                            activation)
                hidden[layer][k], cells[layer][k] = h, c  # (78, H)
                x = h
            pitch0_in[k] = x @ weights.pitch0_time_wT + weights.pitch0_b  # (78, 4H0)
        cons_used[:, t] = cons
        uniforms_t = np.ascontiguousarray(uniforms[:, t])  # (K, 78, 2) float64
        _pitch_sweep(pitch0_in, prev_wT, weights.pitch_sizes,
                     weights.pitch_wxT, weights.pitch_wx_at, weights.pitch_whT,
                     weights.pitch_wh_at, weights.pitch_b, weights.pitch_b_at,
                     weights.out_wT, weights.out_b, weights.tanh_cell, one,
                     uniforms_t, cons, choices_t, probabilities_t)
        states[:, t + 1] = choices_t
        probabilities[:, t] = probabilities_t
        if adaptive:
            cons = next_conservativity(cons, states[:, t + 1, :, 0].sum(axis=1))
    cons_used[:, steps] = cons
    return ComposeTrace(states=states, probabilities=probabilities, conservativity=cons_used)


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
def _pitch_sweep(pitch0_in, prev_wT, sizes, wxT, wx_at, whT, wh_at, biases, b_at, out_wT,
                 out_b, tanh_cell, one, uniforms, cons, choices, probabilities):
    """Run the pitch stack over the 78 notes of one step for K pieces, sampling as it goes.

    pitch0_in (K, 78, 4H0): time-output part of pitch layer 0's projection plus its bias;
    prev_wT (2 * 4H0,) flat; one: 1 in the model's dtype; weights of the other layers flat (see HostWeights); uniforms (K, 78, 2)
    float64; cons (K,) float64. Writes choices (K, 78, 2) uint8, probabilities (K, 78, 2).
    """
    n_pieces = pitch0_in.shape[0]
    n_layers = sizes.shape[0]
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
        for n in range(N_NOTES):
            for layer in range(n_layers):
                H = sizes[layer]
                G = 4 * H
                if layer == 0:
                    for j in range(G):
                        gates[j] = pitch0_in[k, n, j]
                    _add_matvec(gates, G, prev_wT, 0, 2, prev)
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


# ----------------------------------------------------------------------------- checks


def _check_arguments(seed_state, steps, conservativity, adaptive, rng, uniforms):
    """compose's arguments checked: (seeds (K, 78, 2) uint8, single, steps, conservativity,
    adaptive, uniforms (K, steps, 78, 2) float64 given or drawn from rng)."""
    seeds, single = _check_seed_state(seed_state)  # (K, 78, 2)
    steps = _check_steps(steps)
    conservativity = _check_conservativity(conservativity)
    adaptive = _check_flag(adaptive, "adaptive")
    if uniforms is None:
        uniforms = _draw_uniforms(rng, seeds.shape[0], steps, single)  # (K, steps, 78, 2)
    else:
        uniforms = _check_uniforms(uniforms, seeds.shape[0], steps, single)
    return seeds, single, steps, conservativity, adaptive, uniforms


def _check_seed_state(seed_state):
    """(seeds (K, 78, 2) uint8, single) where single says a (78, 2) seed was given."""
    try:
        seeds = np.asarray(seed_state)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"seed_state must be an array of shape (78, 2) or (K, 78, 2): {e}") from None
    if seeds.ndim not in (2, 3) or seeds.shape[-2:] != (N_NOTES, 2):
        raise ValueError(f"seed_state must have shape ({N_NOTES}, 2) or (K, {N_NOTES}, 2), "
                         f"got {seeds.shape}")
    if seeds.dtype.kind not in "biuf":
        raise ValueError(f"seed_state must hold the numbers 0 and 1, got dtype {seeds.dtype}")
    if seeds.dtype != np.bool_ and not np.all((seeds == 0) | (seeds == 1)):
        raise ValueError("seed_state must hold only the values 0 and 1")
    single = seeds.ndim == 2
    return np.ascontiguousarray(seeds.reshape(-1, N_NOTES, 2), dtype=np.uint8), single


def _check_steps(steps):
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be an int, got {steps!r}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    return int(steps)


def _check_conservativity(conservativity):
    if isinstance(conservativity, (bool, np.bool_)) or not isinstance(
            conservativity, (int, float, np.integer, np.floating)):
        raise TypeError(f"conservativity must be a number, got {conservativity!r}")
    if not np.isfinite(conservativity) or conservativity <= 0:
        raise ValueError(f"conservativity must be a finite number > 0, got {conservativity}")
    return float(conservativity)


def _check_flag(value, what):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def _check_uniforms(uniforms, n_pieces, steps, single):
    """uniforms as float64 (K, steps, 78, 2), or a clear error."""
    expected = (steps, N_NOTES, 2) if single else (n_pieces, steps, N_NOTES, 2)
    uniforms = np.asarray(uniforms)
    if uniforms.shape != expected:
        raise ValueError(f"uniforms must have shape {expected} (steps, notes, [U1, U2]), "
                         f"got {uniforms.shape}")
    if uniforms.dtype.kind not in "iuf" or uniforms.dtype == np.float16:
        raise ValueError(f"uniforms must be float32 or float64 numbers, got dtype {uniforms.dtype}")
    uniforms = uniforms.astype(np.float64)
    if not np.all((uniforms >= 0) & (uniforms < 1)):  # also refuses NaN
        raise ValueError("uniforms must lie in [0, 1)")
    return uniforms.reshape(n_pieces, steps, N_NOTES, 2)


def _draw_uniforms(rng, n_pieces, steps, single):
    """(K, steps, 78, 2) float64 from rng.random: (steps, 78, 2) for one seed, so one piece
    gets the same uniforms from the same rng whether given as (78, 2) or (1, 78, 2)."""
    rng = _as_generator(rng)
    shape = (steps, N_NOTES, 2) if single else (n_pieces, steps, N_NOTES, 2)
    return rng.random(shape).reshape(n_pieces, steps, N_NOTES, 2)


def _as_generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_))):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _check_device_output(pieces, n_pieces, steps):
    expected = (n_pieces, steps + 1, N_NOTES, 2)
    if getattr(pieces, "shape", None) != expected:
        raise RuntimeError(f"the device backend returned shape {getattr(pieces, 'shape', None)}, "
                           f"expected {expected}")
    if hasattr(pieces, "get") and not isinstance(pieces, np.ndarray):
        pieces = pieces.get()
    return np.asarray(pieces, dtype=np.uint8)


# ----------------------------------------------------------------------------- command line


def build_parser():
    import argparse

    ap = argparse.ArgumentParser(prog="python -m biaxial_cu.generate",
                                 description="Compose with a trained model (MODEL_SPEC section 7).")
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default="piece.mid", help="MIDI file (with --count K: piece_0.mid ...)")
    ap.add_argument("--steps", type=int, default=128 * 10)
    ap.add_argument("--count", type=int, default=1, help="pieces composed at once")
    ap.add_argument("--seed", type=int, default=0, help="random seed (seed state and uniforms)")
    ap.add_argument("--seed-from", metavar="DIR", help="seed from step 0 of a random segment of a "
                    "piece in DIR (default: the shipped corpus)")
    ap.add_argument("--silent-seed", action="store_true", help="start from a silent step")
    ap.add_argument("--conservativity", type=float, default=1.0)
    ap.add_argument("--no-adaptive", action="store_true", help="keep conservativity fixed")
    ap.add_argument("--backend", choices=["auto", "cuda", "numpy"], default="auto")
    ap.add_argument("--no-png", action="store_true", help="no piano-roll PNG")
    ap.add_argument("--wav", action="store_true", help="also render WAV (fluidsynth + soundfont)")
    return ap


def main(argv=None):
    import sys
    from pathlib import Path

    from .data import load_pieces, shipped_corpus_dir
    from .errors import CheckpointError
    from .midi import write_state_matrix
    from .model import Model
    from .viz import piano_roll_png, render_wav

    a = build_parser().parse_args(argv)
    try:
        if a.count < 1 or a.steps < 0:
            raise ValueError("--count must be >= 1 and --steps >= 0")
        model = Model.load(a.checkpoint, backend=a.backend)
        rng = np.random.default_rng(a.seed)
        if a.silent_seed:
            seeds = np.zeros((a.count, N_NOTES, 2), np.uint8)
        else:
            folder = Path(a.seed_from) if a.seed_from else shipped_corpus_dir()
            if not folder.is_dir():
                raise ValueError(f"no such folder: {folder}")
            pieces = load_pieces(folder, min_steps=1)
            if not pieces:
                raise ValueError(f"no usable pieces to seed from in {folder}")
            seq_len = min(SEGMENT_LEN, *(len(p) for p in pieces.values()))
            seeds = np.stack([seed_from_pieces(pieces, rng, seq_len=seq_len) for _ in range(a.count)])
        composed = compose(model, seeds, a.steps, conservativity=a.conservativity,
                           adaptive=not a.no_adaptive, rng=rng)  # (K, steps+1, 78, 2)
    except (CheckpointError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out] if a.count == 1 else [out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(a.count)]
    for piece, path in zip(composed, paths):
        write_state_matrix(piece, path)
        if not a.no_png:
            piano_roll_png(piece, path.with_suffix(".png"), title=path.name)
        if a.wav:
            render_wav(path, path.with_suffix(".wav"))
        print(f"wrote {path} ({a.steps} steps, backend {model.backend})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
