"""kernels/layout.cu on the CPU harness against its twins: pure copies, equal bit for bit."""
import numpy as np

from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda.kernels import ELEMENTWISE_THREADS as THREADS
from biaxial_cu.backends.cuda.kernels import blocks
from kernel_helpers import emu, random_batch


def test_layout_kernels_match_twins():
    rng = np.random.default_rng(1)
    B, T, Ht = 2, 5, 7
    L = T - 1
    S = random_batch(rng, B, T)
    time_out = rng.standard_normal((L, B * 78, Ht)).astype(np.float32)
    mod = emu.load_kernels("layout")
    out = np.full((78, B * L, Ht + 2), np.nan, np.float32)
    mod.launch("pitch_inputs", blocks(out.size, THREADS), THREADS, [time_out, S, out, B, L, Ht])
    np.testing.assert_array_equal(out, ref.pitch_inputs(time_out, S))
    y = np.full((78, B * L, 2), np.nan, np.float32)
    mod.launch("pitch_targets", blocks(y.size, THREADS), THREADS, [S, y, B, L])
    np.testing.assert_array_equal(y, ref.pitch_targets(S))
    back = np.full((L, B * 78, Ht), np.nan, np.float32)
    mod.launch("pitch_to_time", blocks(back.size, THREADS), THREADS, [out, back, B, L, Ht, Ht + 2])
    np.testing.assert_array_equal(back, ref.pitch_to_time(out, B, Ht))
