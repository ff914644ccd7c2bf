"""Note input features: 80 numbers per note per step (MODEL_SPEC.md section 2).

For note n (pitch n + 24, pitch class pc = n % 12) of a state S[t] (78, 2) at step index t:

    slot   0       position: n itself (0..77, not normalised)
    slots  1:13    one-hot of pc
    slots 13:63    vicinity: for offsets i = -12..12 the pair (play, articulate) of note n+i,
                   interleaved (slot 13 + 2*(i+12) is play, the next one articulate); zero for
                   n+i outside 0..77 (the original wrapped around through negative indexing;
                   we do not copy that bug)
    slots 63:75    context: c[(pc + k) % 12] for k = 0..11, c[p] = notes of class p playing
    slots 75:79    beat: 2*b - 1 for b in (t%2, t//2%2, t//4%2, t//8%2)
    slot  79       always 0

t is the step index counted from the segment's start (meters "original", the original's rule),
or the step's bar position, steps since its bar line (meters "all"). For a piece in 4/4 the two
give the same features. A bar longer than 16 steps (9/8: 18, 12/8: 24) wraps: positions 16, 17
show the model the pattern of 0, 1, a second "downbeat" inside the bar; slot 79 stays 0 in
both modes, so a 4/4 piece keeps the original's features exactly.

Design: everything is a strided view, a gather or a small matrix product over whole arrays;
there is no Python loop over steps or notes. The parts that do not depend on the state
(position, pitch-class one-hot, context rotation indices) are built once at import.
"""
import numpy as np

from .common import N_FEATURES, N_NOTES, check_int

VICINITY = 12  # notes on each side of n in the vicinity window
N_OFFSETS = 2 * VICINITY + 1  # 25 offsets i = -12..12

POSITION = slice(0, 1)
PITCH_CLASS = slice(1, 13)
VICINITY_SLOTS = slice(13, 63)
CONTEXT = slice(63, 75)
BEAT = slice(75, 79)
ZERO = slice(79, 80)

_notes = np.arange(N_NOTES)  # (78,)
_pitch_class = _notes % 12  # (78,)
# context slot k of note n reads c[(pc(n) + k) % 12]
_context_index = (_pitch_class[:, None] + np.arange(12)[None, :]) % 12  # (78, 12)
# one-hot (78, 12): note n -> its pitch class; play @ it counts the notes per pitch class
_class_one_hot = (_pitch_class[:, None] == np.arange(12)[None, :]).astype(np.float64)  # (78, 12)
_beat_bits = np.array([1, 2, 4, 8])  # (4,) divisors for t%2, t//2%2, t//4%2, t//8%2


def note_inputs(S, start_step=0, *, positions=None, dtype=np.float32):
    """Features of every step of S: (T, 78, 80), row t at step index start_step + t (the
    original's rule), or at bar position positions[t] when positions (T,) is given (meters
    "all": steps since the bar line, as read_state_matrix(..., return_bar_positions=True) gives).

    S: (T, 78, 2) of 0/1 values (any integer, bool or float dtype).
    """
    S = _check_states(S, "S")  # (T, 78, 2)
    if positions is not None:
        if start_step:
            raise ValueError("give start_step or positions, not both")
        return _features(S, _check_steps(positions, S.shape[0]), dtype)
    start_step = check_int(start_step, "start_step", 0, not_int=ValueError)
    steps = start_step + np.arange(S.shape[0], dtype=np.int64)  # (T,)
    return _features(S, steps, dtype)


def note_inputs_at(states, steps, *, dtype=np.float32):
    """Features of N states, each at its own step index: (N, 78, 80).

    states: (N, 78, 2) of 0/1 values; steps: (N,) non-negative ints (a single int is used
    for every state). Used by generation, which advances K pieces one step at a time.
    """
    states = _check_states(states, "states")  # (N, 78, 2)
    steps = _check_steps(steps, states.shape[0])  # (N,)
    return _features(states, steps, dtype)


def _features(states, steps, dtype):
    """states (N, 78, 2) uint8, steps (N,) int64 -> (N, 78, 80) of dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    n = states.shape[0]
    out = np.zeros((n, N_NOTES, N_FEATURES), dtype=dtype)  # (N, 78, 80)

    out[:, :, 0] = _notes  # position
    out[:, :, PITCH_CLASS] = _class_one_hot

    # Vicinity: note n, offset i reads padded note n + i + 12; a sliding window of 25 padded
    # notes per n is a strided view, copied straight into the 50 slots seen as (25, 2).
    padded = np.zeros((n, N_NOTES + 2 * VICINITY, 2), dtype=dtype)  # (N, 102, 2)
    padded[:, VICINITY:VICINITY + N_NOTES] = states
    windows = np.lib.stride_tricks.sliding_window_view(padded, N_OFFSETS, axis=1)  # (N, 78, 2, 25)
    vicinity_out = out[:, :, VICINITY_SLOTS].reshape(n, N_NOTES, N_OFFSETS, 2)  # (N, 78, 25, 2) view
    vicinity_out[...] = windows.transpose(0, 1, 3, 2)

    counts = states[:, :, 0].astype(np.float64) @ _class_one_hot  # (N, 12) c[p]
    out[:, :, CONTEXT] = counts[:, _context_index]  # (N, 78, 12)

    bits = (steps[:, None] // _beat_bits[None, :]) % 2  # (N, 4) each 0 or 1
    out[:, :, BEAT] = (2 * bits - 1)[:, None, :]  # (N, 1, 4) -> every note
    # slot 79 stays 0
    return out


def _check_states(states, what):
    """Return states as a uint8 (N, 78, 2) array of 0/1, or raise ValueError."""
    states = np.asarray(states)
    if states.ndim != 3 or states.shape[1:] != (N_NOTES, 2):
        raise ValueError(f"{what} must have shape (N, {N_NOTES}, 2), got {states.shape}")
    if states.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold the numbers 0 and 1, got dtype {states.dtype}")
    if states.dtype != np.bool_ and not np.all((states == 0) | (states == 1)):
        raise ValueError(f"{what} must hold only the values 0 and 1")
    return states.astype(np.uint8, copy=False)


def _check_steps(steps, n):
    """steps as an int64 (n,) array of non-negative ints, or raise ValueError."""
    steps = np.asarray(steps)
    if steps.dtype.kind not in "iu":
        raise ValueError(f"steps must be integers, got dtype {steps.dtype}")
    if steps.ndim == 0:
        steps = np.full(n, steps, dtype=np.int64)
    if steps.shape != (n,):
        raise ValueError(f"steps must have shape ({n},) to match the states, got {steps.shape}")
    if np.any(steps < 0):
        raise ValueError("steps must be >= 0")
    return steps.astype(np.int64, copy=False)
