"""kernels/output_loss.cu on the CPU harness against reference.output_loss_forward / _backward.

Forward: P within the float32 tolerance (kernel_helpers); the loss, a sum of float64 terms from
float32 probabilities, within 1e-5 relative. Backward: the twin's arithmetic in the same order
in float32, so a few ulps: atol 1e-6, rtol 1e-5 (the 1/(...) of the loss gradient can reach
2^23 when P is 0 or 1; rtol covers it).
"""
import numpy as np
import pytest

from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda.kernels import LOSS_THREADS, blocks
from kernel_helpers import ATOL, RTOL, emu


def test_output_loss_forward_matches_twin():
    rng = np.random.default_rng(3)
    M, Hp = 600, 9  # 3 blocks, the last one partial
    h = rng.standard_normal((M, Hp)).astype(np.float32)
    W = rng.standard_normal((2, Hp)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    y = (rng.random((M, 2)) < 0.4).astype(np.float32)
    y[:, 1] *= y[:, 0]
    P = np.full((M, 2), np.nan, np.float32)
    partial = np.full(blocks(M, LOSS_THREADS), np.nan, np.float64)
    emu.load_kernels("output_loss").launch("output_loss_forward", len(partial), LOSS_THREADS, [h, W, b, y, P, partial, M, Hp])
    want_P, want_loss = ref.output_loss_forward(h, W, b, y)
    np.testing.assert_allclose(P, want_P, atol=ATOL, rtol=RTOL)
    assert partial.sum() == pytest.approx(want_loss, rel=1e-5)


def test_output_loss_backward_matches_twin():
    rng = np.random.default_rng(4)
    M = 300
    P = rng.random((M, 2)).astype(np.float32)
    P[:5] = [[0, 1], [1, 0], [1, 1], [0, 0], [0.5, 0.5]]  # the eps-guarded extremes
    y = (rng.random((M, 2)) < 0.5).astype(np.float32)
    y[:, 1] *= y[:, 0]
    d = np.full((M, 2), np.nan, np.float32)
    emu.load_kernels("output_loss").launch("output_loss_backward", (M + 127) // 128, 128, [P, y, d, M])
    np.testing.assert_allclose(d, ref.output_loss_backward(P, y), atol=1e-6, rtol=1e-5)
