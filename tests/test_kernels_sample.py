"""kernels/sample.cu on the CPU harness against its twin, the numba pitch_sweep
(backends/pitch_sweep.py): the same choices, probabilities and conservativity, bit for bit.

On the harness the kernel runs glibc's expf/tanhf like numba does, adds every dot product's
terms in the same order, and has no fused multiply-adds, so probabilities and choices must be
identical, not merely close. (On a GPU the transcendental functions differ by an ulp or two;
tests/test_cuda_backend.py measures how often that flips a choice.)
"""
import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.backends.pitch_sweep import pitch_sweep
from biaxial_cu.generate import next_conservativity
from biaxial_cu.params import host_weights
from kernel_helpers import emu


@pytest.mark.parametrize("sizes,act,adaptive", [((6, 5), "identity", 1), ((7,), "tanh", 0), ((4, 3, 5), "tanh", 1)])
def test_pitch_sweep_matches_twin_exactly(sizes, act, adaptive):
    model = Model((8,), sizes, cell_activation=act, backend="numpy", seed=len(sizes))
    for p in model.params.values():  # livelier than the initialisation, so choices vary
        p *= 8
    w = host_weights(model.params, act)
    rng = np.random.default_rng(0)
    K = 3
    pitch0_in = rng.standard_normal((K, 78, 4 * sizes[0])).astype(np.float32)
    uniforms = rng.random((K, 78, 2))
    cons = np.array([1.0, 0.7, 2.5])
    weights = [w.pitch0_prev_wT, w.pitch_sizes, w.pitch_wxT, w.pitch_wx_at, w.pitch_whT, w.pitch_wh_at, w.pitch_b,
               w.pitch_b_at, w.out_wT, w.out_b]
    want_choices, want_probs, want_cons = np.zeros((K, 78, 2), np.uint8), np.zeros((K, 78, 2), np.float32), cons.copy()
    pitch_sweep(pitch0_in, *weights, uniforms, want_cons, want_choices, want_probs, act == "tanh", bool(adaptive),
                np.float32(1))
    choices, probs, got_cons = np.full((K, 78, 2), 7, np.uint8), np.full((K, 78, 2), np.nan, np.float32), cons.copy()
    threads = 32 * -(-4 * max(sizes) // 32)
    emu.load_kernels("sample").launch("pitch_sweep", K, threads,
                                      [pitch0_in, *weights, uniforms, got_cons, choices, probs, len(sizes),
                                       int(act == "tanh"), adaptive])
    np.testing.assert_array_equal(probs, want_probs)
    np.testing.assert_array_equal(choices, want_choices)
    np.testing.assert_array_equal(got_cons, want_cons)
    assert 0 < want_choices[..., 0].sum() < K * 78  # a real mix of decisions
    # the twin's conservativity rule is generate.next_conservativity's
    np.testing.assert_array_equal(want_cons, next_conservativity(cons, want_choices[..., 0].sum(axis=1)) if adaptive else cons)
