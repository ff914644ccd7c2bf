"""kernels/dropout.cu on the CPU harness against reference.dropout_mask_hash, bit for bit."""
import numpy as np
import pytest

from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda.kernels import ELEMENTWISE_THREADS as THREADS
from biaxial_cu.backends.cuda.kernels import blocks
from kernel_helpers import emu


@pytest.mark.parametrize("seed,p", [(0, 0.5), (2**63 - 1, 0.25), (987654321, 0.0)])
def test_dropout_mask_hash_matches_twin_bit_for_bit(seed, p):
    n = 1000  # 4 blocks of 256, the last one partial
    masks = np.full(n, np.nan, np.float32)
    p32 = np.float32(p)
    emu.load_kernels("dropout").launch("dropout_mask_hash", blocks(n, THREADS), THREADS,
                                       [np.uint64(seed), masks, n, p32, np.float32(1) / (np.float32(1) - p32)])
    want = ref.dropout_mask_hash(seed, n, p)
    np.testing.assert_array_equal(masks, want)
    kept = (want > 0).mean()
    assert abs(kept - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n) + 1e-9  # a fair coin, within 4 sigma
