"""kernels/adadelta.cu on the CPU harness against reference.segment_sq_norms and
reference.adadelta_update, over the flat layout both backends use (params.FlatState)."""
import numpy as np

from biaxial_cu import Model
from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda.kernels import ELEMENTWISE_THREADS as THREADS
from biaxial_cu.backends.cuda.kernels import blocks
from biaxial_cu.params import segment_offsets
from kernel_helpers import emu


def test_segment_norms_and_adadelta_match_twins():
    model = Model((5, 4), (3, 2), backend="numpy", seed=0)
    rng = np.random.default_rng(5)
    # gradients: some segments above the clip norm, one all zero, the rest small
    grads = {n: (rng.standard_normal(p.shape) * rng.choice([0.01, 1.0, 10.0])).astype(np.float32)
             for n, p in model.params.items()}
    grads["time.1.b"][:4] = 0  # gate i of time.1.b: a zero segment
    offsets = segment_offsets({n: p.shape for n, p in model.params.items()})
    g = np.concatenate([grads[n].ravel() for n in model.params])
    sq = np.full(len(offsets) - 1, np.nan, np.float64)
    mod = emu.load_kernels("adadelta")
    mod.launch("segment_sq_norms", len(sq), 256, [g, offsets, sq])
    want_sq = ref.segment_sq_norms(g, offsets)
    np.testing.assert_allclose(sq, want_sq, rtol=1e-12)  # float64 sums in another order
    assert (sq == 0).sum() == 1 and (np.sqrt(sq) > 5).any() and (np.sqrt(sq) < 5).any()
    w = np.concatenate([p.ravel() for p in model.params.values()])
    Eg, Ex = np.zeros_like(w), np.zeros_like(w)
    want_w, want_Eg, want_Ex = w.copy(), Eg.copy(), Ex.copy()
    for _ in range(2):  # two steps: the accumulators matter in the second
        mod.launch("adadelta_update", blocks(w.size, THREADS), THREADS,
                   [w, g, Eg, Ex, offsets, sq, len(sq), w.size, 0.95, 1e-6, 5.0])
        ref.adadelta_update(want_w, g, want_Eg, want_Ex, offsets, want_sq)
    # w + d rounds to float32 at |w| < 1 (an ulp is at most 6e-8); the updates are ~4.5e-3 per
    # step, so atol 1e-7 still catches an update wrong by 1e-4 of itself.
    np.testing.assert_allclose(w, want_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Eg, want_Eg, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(Ex, want_Ex, rtol=1e-5, atol=1e-12)
    assert not np.array_equal(w, np.concatenate([p.ravel() for p in model.params.values()]))  # it moved
