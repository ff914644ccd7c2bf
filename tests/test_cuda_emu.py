"""The CPU harness for CUDA kernels checks itself on sample kernels, broken ones included."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "cuda_emu"))
import emu  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which(emu.CXX) is None, reason="needs g++")
SAMPLES = Path(__file__).parent / "cuda_emu" / "samples" / "samples.cu"


@pytest.fixture(scope="module")
def mod():
    return emu.load(SAMPLES)


def test_block_sum_shared_memory_and_shuffles(mod):
    x = np.random.default_rng(0).standard_normal(300).astype(np.float32)
    out = np.zeros(3, np.float32)
    mod.launch("block_sum", grid=3, block=128, args=[x, out, 300])
    want = [x[i * 128:(i + 1) * 128].sum(dtype=np.float64) for i in range(3)]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_tiled_matmul_partial_tiles_several_blocks(mod):
    rng = np.random.default_rng(1)
    M, N, K = 13, 19, 21
    A, B = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    C = np.full((M, N), -7, np.float32)
    mod.launch("matmul", grid=(3, 2), block=(8, 8), args=[A, B, C, M, N, K])
    np.testing.assert_allclose(C, A.astype(np.float64) @ B, rtol=1e-5, atol=1e-5)


def test_dynamic_shared_memory(mod):
    x = np.arange(64, dtype=np.float32)
    mod.launch("reverse_blocks", grid=2, block=32, args=[x, 64], shared_bytes=32 * 4)
    np.testing.assert_array_equal(x, np.concatenate([np.arange(31, -1, -1), np.arange(63, 31, -1)]))


def test_atomics_and_ballot(mod):
    v = np.random.default_rng(2).integers(0, 5, 100).astype(np.int32)
    bins, pos = np.zeros(5, np.int32), np.zeros(1, np.uint32)
    mod.launch("histogram", grid=2, block=64, args=[v, bins, pos, 100])
    np.testing.assert_array_equal(bins, np.bincount(v, minlength=5))
    assert pos[0] == np.count_nonzero(v > 0)


def test_missing_barrier_is_caught(mod):
    x = np.ones(128, np.float32)
    with pytest.raises(emu.EmuError, match="race"):
        mod.launch("racy_sum", grid=1, block=128, args=[x, np.zeros(1, np.float32), 128])


def test_divergent_barrier_is_reported(mod):
    with pytest.raises(emu.EmuError, match="deadlock|divergent"):
        mod.launch("divergent_barrier", grid=1, block=32, args=[np.zeros(32, np.float32)])


def test_out_of_bounds_write_fails(mod):
    with pytest.raises(emu.EmuError, match="AddressSanitizer"):
        mod.launch("write_past_end", grid=1, block=64, args=[np.zeros(40, np.float32), 40])


def test_unwritten_shared_memory_reads_nan(mod):
    x = np.zeros(64, np.float32)
    mod.launch("read_unwritten_shared", grid=1, block=64, args=[x])
    assert (x[:32] == 1).all() and np.isnan(x[32:]).all()


def test_argument_checks(mod):
    out = np.zeros(1, np.float32)
    with pytest.raises(TypeError, match="float32"):
        mod.launch("block_sum", grid=1, block=128, args=[np.zeros(128), out, 128])
    with pytest.raises(TypeError, match="int"):
        mod.launch("block_sum", grid=1, block=128, args=[np.zeros(128, np.float32), out, 1.5])
    with pytest.raises(TypeError, match="3 arguments"):
        mod.launch("block_sum", grid=1, block=128, args=[out])
