"""What the per-.cu kernel tests share: the CPU harness, random batches, float32 tolerances.

Tolerances (float32): a dot product of length K summed in another order differs by at most
about K * 2^-24 * sum|terms|; with K <= 40 and O(1) terms that is < 1e-5 absolute, and the
sigmoid/tanh that follow shrink it. So gates, h and c are compared with atol 2e-5, rtol 1e-5.
Copies (features, layouts) and the counter-based hash must be exact.
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cuda_emu"))
import emu  # noqa: E402,F401  (re-exported: the kernel tests launch through it)

ATOL, RTOL = 2e-5, 1e-5


def random_batch(rng, B, T, density=0.25):
    """(B, T, 78, 2) uint8 with articulate only where play."""
    S = (rng.random((B, T, 78, 2)) < density).astype(np.uint8)
    S[..., 1] *= S[..., 0]
    return S
