"""kernels/features.cu on the CPU harness against its twins (reference.note_inputs,
reference.note_inputs_at): copies of exact numbers, so equal bit for bit."""
import numpy as np

from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda.kernels import FEATURE_THREADS, blocks
from kernel_helpers import emu, random_batch


def test_note_inputs_matches_twin():
    rng = np.random.default_rng(0)
    B, T = 2, 19  # 18 steps: beat bits up to t = 17
    S = random_batch(rng, B, T)
    X = np.full((T - 1, B * 78, 80), np.nan, np.float32)
    emu.load_kernels("features").launch("note_inputs", blocks(X.shape[0] * X.shape[1], FEATURE_THREADS),
                                        FEATURE_THREADS, [S, X, B, T])
    np.testing.assert_array_equal(X, ref.note_inputs(S))


def test_note_inputs_at_matches_twin():
    rng = np.random.default_rng(1)
    states = random_batch(rng, 3, 1, 0.3)[:, 0]
    mod = emu.load_kernels("features")
    for t in (0, 5, 13):
        X = np.full((3 * 78, 80), np.nan, np.float32)
        mod.launch("note_inputs_at", blocks(3 * 78, FEATURE_THREADS), FEATURE_THREADS, [states, X, 3, t])
        np.testing.assert_array_equal(X, ref.note_inputs_at(states, t))
