"""kernels/features.cu on the CPU harness against its twins (reference.note_inputs,
reference.note_inputs_at): copies of exact numbers, so equal bit for bit, with the original's
positions (each step's index in its segment) and with bar positions of any meter."""
import numpy as np
import pytest

from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda.kernels import FEATURE_THREADS, blocks
from kernel_helpers import emu, random_batch

B, T = 2, 19  # 18 steps: beat bits up to t = 17


def positions_of(kind, rng):
    """(B, T) int32: the original's segment positions, or bars of 6 and 18 steps from odd starts."""
    if kind == "original":
        return ref.segment_positions(B, T)
    return np.stack([(5 + np.arange(T)) % 6, (11 + np.arange(T)) % 18]).astype(np.int32)


@pytest.mark.parametrize("kind", ["original", "bars"])
def test_note_inputs_matches_twin(kind):
    rng = np.random.default_rng(0)
    S = random_batch(rng, B, T)
    P = positions_of(kind, rng)
    X = np.full((T - 1, B * 78, 80), np.nan, np.float32)
    emu.load_kernels("features").launch("note_inputs", blocks(X.shape[0] * X.shape[1], FEATURE_THREADS),
                                        FEATURE_THREADS, [S, P, X, B, T])
    np.testing.assert_array_equal(X, ref.note_inputs(S, P))


def test_note_inputs_at_matches_twin():
    rng = np.random.default_rng(1)
    states = random_batch(rng, 3, 1, 0.3)[:, 0]
    mod = emu.load_kernels("features")
    for P in ([0, 0, 0], [5, 13, 2], [17, 4095, 9]):
        P = np.array(P, np.int32)
        X = np.full((3 * 78, 80), np.nan, np.float32)
        mod.launch("note_inputs_at", blocks(3 * 78, FEATURE_THREADS), FEATURE_THREADS, [states, P, X, 3])
        np.testing.assert_array_equal(X, ref.note_inputs_at(states, P))
