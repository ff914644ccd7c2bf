"""Generation kernels on the CPU harness: the same choices as the CPU generator, bit for bit.

On the harness the kernel runs glibc's expf/tanhf like numba does, adds every dot product's
terms in the same order, and has no fused multiply-adds, so probabilities and choices must be
identical, not merely close. (On a GPU the transcendental functions differ by an ulp or two;
tests/test_cuda_backend.py measures how often that flips a choice.)
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu import generate as gen
from biaxial_cu.features import note_inputs_at

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cuda_emu"))
import emu  # noqa: E402


@pytest.fixture(scope="module")
def sample_mod():
    return emu.load(ROOT / "kernels" / "sample.cu")


@pytest.mark.parametrize("sizes,act,adaptive", [((6, 5), "identity", 1), ((7,), "tanh", 0), ((4, 3, 5), "tanh", 1)])
def test_pitch_sweep_matches_cpu_sweep_exactly(sample_mod, sizes, act, adaptive):
    model = Model((8,), sizes, cell_activation=act, backend="numpy", seed=len(sizes))
    for name in model.params:  # livelier than the initialisation, so choices vary
        model.params[name] *= 8
    w = gen.host_weights(model)
    rng = np.random.default_rng(0)
    K = 3
    G0 = 4 * sizes[0]
    pitch0_in = rng.standard_normal((K, 78, G0)).astype(np.float32)
    uniforms = rng.random((K, 78, 2))
    cons = np.array([1.0, 0.7, 2.5])
    want_choices = np.zeros((K, 78, 2), np.uint8)
    want_probs = np.zeros((K, 78, 2), np.float32)
    gen._pitch_sweep(pitch0_in, w.pitch0_prev_wT.ravel(), w.pitch_sizes, w.pitch_wxT, w.pitch_wx_at,
                     w.pitch_whT, w.pitch_wh_at, w.pitch_b, w.pitch_b_at, w.out_wT, w.out_b,
                     w.tanh_cell, np.float32(1), uniforms, cons.copy(), want_choices, want_probs)
    choices = np.full((K, 78, 2), 7, np.uint8)
    probs = np.full((K, 78, 2), np.nan, np.float32)
    got_cons = cons.copy()
    threads = 32 * -(-4 * max(sizes) // 32)
    sample_mod.launch("pitch_sweep", K, threads,
                      [pitch0_in, np.ascontiguousarray(w.pitch0_prev_wT), w.pitch_sizes, w.pitch_wxT,
                       w.pitch_wx_at, w.pitch_whT, w.pitch_wh_at, w.pitch_b, w.pitch_b_at, w.out_wT,
                       w.out_b, uniforms, got_cons, choices, probs, len(sizes), int(act == "tanh"), adaptive])
    np.testing.assert_array_equal(probs, want_probs)
    np.testing.assert_array_equal(choices, want_choices)
    assert 0 < want_choices[..., 0].sum() < K * 78  # a real mix of decisions
    want_cons = gen.next_conservativity(cons, want_choices[..., 0].sum(axis=1)) if adaptive else cons
    np.testing.assert_array_equal(got_cons, want_cons)


def test_note_inputs_at_matches_features(sample_mod):
    rng = np.random.default_rng(1)
    states = (rng.random((3, 78, 2)) < 0.3).astype(np.uint8)
    mod = emu.load(ROOT / "kernels" / "features.cu")
    for t in (0, 5, 13):
        X = np.full((3 * 78, 80), np.nan, np.float32)
        mod.launch("note_inputs_at", (3 * 78 + 127) // 128, 128, [states, X, 3, t])
        np.testing.assert_array_equal(X, note_inputs_at(states, t).reshape(3 * 78, 80))
