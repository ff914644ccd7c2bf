"""GPU checks of the cuda backend (`python -m pytest -m gpu`); skipped with the reason elsewhere.

Tolerance: the float32 forward of the original configuration differs from the float64
reference by rounding in 127 recurrent steps and a sum of ~10^5 loss terms. The float32 NumPy
reference lands 2.5e-8 relative from float64 on a shipped-corpus batch (seed 0, measured on
the CPU); the kernels sum dot products in another order and flush denormals, so we allow
1e-5 relative: 400 times that, still far below any real error (a wrong gate or mask moves
the loss by percents).
"""
import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.backends import reference as ref
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def real_batch():
    pieces = load_pieces(shipped_corpus_dir())
    return sample_batch(pieces, 10, 128, np.random.default_rng(0))


def copy_params(src, dst):
    for name, value in src.params.items():
        dst.params[name][...] = _to(dst, value)


def _to(model, value):
    value = value.get() if hasattr(value, "get") else value
    if model.backend == "cuda":
        import cupy

        return cupy.asarray(value, dtype=cupy.float32)
    return value.astype(model.dtype)


@pytest.mark.parametrize("act", ["identity", "tanh"])
def test_loss_matches_numpy_on_the_original_configuration(real_batch, act):
    gpu = Model(cell_activation=act, backend="cuda", seed=0)
    cpu = Model(cell_activation=act, backend="numpy", dtype="float64", seed=0)
    copy_params(gpu, cpu)
    assert gpu.loss(real_batch) == pytest.approx(cpu.loss(real_batch), rel=1e-5)


def test_lstm_step_forward_at_time_stack_size():
    import cupy

    from biaxial_cu.backends import cuda

    rng = np.random.default_rng(0)
    R, H = 780, 300
    xproj = rng.standard_normal((R, 4 * H)).astype(np.float32)
    h_prev = rng.standard_normal((R, H)).astype(np.float32)
    c_prev = rng.standard_normal((R, H)).astype(np.float32)
    W_h = (rng.standard_normal((4 * H, H)) / H).astype(np.float32)
    outs = [cupy.empty((R, H), cupy.float32) for _ in range(3)]
    gates = cupy.empty((R, 4 * H), cupy.float32)
    zeros = cupy.zeros((R, H), cupy.float32)
    cuda.kernel("lstm", "lstm_step_forward")(
        ((H + 15) // 16, (R + 15) // 16), (16, 16),
        (cupy.asarray(xproj), cupy.asarray(h_prev), cupy.asarray(c_prev), cupy.asarray(W_h), zeros,
         outs[0], outs[1], gates, outs[2], np.int32(R), np.int32(H), np.int32(0), np.int32(0)))
    h, c, g = ref.lstm_step_forward(xproj.astype(np.float64), h_prev.astype(np.float64),
                                    c_prev.astype(np.float64), W_h.astype(np.float64), "identity")
    np.testing.assert_allclose(outs[0].get(), h, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(outs[1].get(), c, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(gates.get(), g, atol=1e-5, rtol=1e-5)


def test_cuda_backend_cannot_train_yet_says_so(real_batch):
    m = Model((8,), (4,), backend="cuda", seed=0)
    with pytest.raises(NotImplementedError, match="backward"):
        m.gradients(real_batch[:1, :8])
