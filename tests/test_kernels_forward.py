"""Forward kernels run on the CPU harness and match their NumPy twins.

Tolerances (float32): a dot product of length K summed in another order differs by at most
about K * 2^-24 * sum|terms|; with K <= 40 and O(1) terms here that is < 1e-5 absolute, and the
sigmoid/tanh that follow shrink it. So gates, h and c are compared with atol 2e-5, rtol 1e-5.
Copies (features, layouts) must be exact. The loss is a sum of float64 terms computed from
float32 probabilities: relative 1e-5 against the float32 reference.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda import lstm_forward_launch, lstm_step_kernel_name
from biaxial_cu.features import note_inputs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cuda_emu"))
import emu  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from lstm_tiles import FORWARD as FORWARD_TILES  # noqa: E402
from lstm_tiles import FORWARD_TF32 as FORWARD_TF32_TILES  # noqa: E402

ATOL, RTOL = 2e-5, 1e-5


def random_batch(rng, B, T, density=0.25):
    S = (rng.random((B, T, 78, 2)) < density).astype(np.uint8)
    S[..., 1] *= S[..., 0]
    return S


def blocks(n, size):
    return (n + size - 1) // size


def test_note_inputs_matches_features():
    rng = np.random.default_rng(0)
    B, T = 2, 19  # 18 steps: beat bits up to t = 17
    S = random_batch(rng, B, T)
    X = np.full((T - 1, B * 78, 80), np.nan, np.float32)
    emu.load_kernels("features").launch("note_inputs", blocks(X.shape[0] * X.shape[1], 128), 128, [S, X, B, T])
    want = ref.time_inputs(np.stack([note_inputs(S[b, :-1]) for b in range(B)]))
    np.testing.assert_array_equal(X, want)


def test_layout_kernels_match_twins():
    rng = np.random.default_rng(1)
    B, T, Ht = 2, 5, 7
    L = T - 1
    S = random_batch(rng, B, T)
    time_out = rng.standard_normal((L, B * 78, Ht)).astype(np.float32)
    mod = emu.load_kernels("layout")
    out = np.full((78, B * L, Ht + 2), np.nan, np.float32)
    mod.launch("pitch_inputs", blocks(out.size, 256), 256, [time_out, S, out, B, L, Ht])
    targets = S[:, 1:].astype(np.float32)
    np.testing.assert_array_equal(out, ref.pitch_inputs(time_out, targets))
    y = np.full((78, B * L, 2), np.nan, np.float32)
    mod.launch("pitch_targets", blocks(y.size, 256), 256, [S, y, B, L])
    np.testing.assert_array_equal(y, ref.pitch_targets(targets))
    back = np.full((L, B * 78, Ht), np.nan, np.float32)
    mod.launch("pitch_to_time", blocks(back.size, 256), 256, [out, back, B, L, Ht, Ht + 2])
    np.testing.assert_array_equal(back, ref.pitch_to_time(out[:, :, :Ht], B))


# shapes: smaller than a tile, several tiles with partial edges on both axes, exact tiles, H not a
# multiple of the k chunk (16); three steps, so step 0 (no recurrent product) and later steps run
@pytest.mark.parametrize("R,H", [(5, 3), (70, 37), (32, 32), (33, 20)])
@pytest.mark.parametrize("act", ["identity", "tanh"])
@pytest.mark.parametrize("use_mask", [0, 1])
def test_lstm_step_forward_matches_twin(R, H, act, use_mask):
    check_lstm_step_forward(R, H, act, use_mask)


@pytest.mark.parametrize("tiles", FORWARD_TILES[1:], ids=str)
def test_lstm_step_forward_tile_variants(tiles):
    """Every tile shape bench/lstm_tiles.py times, compiled with its -D options."""
    check_lstm_step_forward(70, 37, "tanh", 1, tiles)


# the TF32 tensor-core kernel on the same shapes (its tiles: 64 rows x 16 units, chunks of 16 k)
@pytest.mark.parametrize("R,H", [(5, 3), (70, 37), (33, 20)])
@pytest.mark.parametrize("act,use_mask", [("identity", 0), ("tanh", 1)])
def test_lstm_step_forward_tf32_matches_twin(R, H, act, use_mask):
    """Twin: the fp32 twin on TF32-rounded h_prev and W_h (reference.round_tf32), in float64:
    the harness's mma multiplies TF32 values exactly and sums in float, so the fp32 tolerance
    holds; without the rounding the kernel would miss it by ~2^-11 of every product."""
    check_lstm_step_forward(R, H, act, use_mask, tf32=True)


@pytest.mark.parametrize("tiles", FORWARD_TF32_TILES[1:], ids=str)
def test_lstm_step_forward_tf32_tile_variants(tiles):
    check_lstm_step_forward(70, 37, "tanh", 1, tiles, tf32=True)


def check_lstm_step_forward(R, H, act, use_mask, tiles=None, tf32=False):
    L = 3
    rng = np.random.default_rng(R * H + use_mask)
    xproj = rng.standard_normal((L, R, 4 * H)).astype(np.float32)
    W_h = (rng.standard_normal((4 * H, H)) / np.sqrt(H)).astype(np.float32)
    mask = ref.dropout_mask(rng, R, H, 0.5, np.float32)
    h, c, h_out = (np.full((L, R, H), np.nan, np.float32) for _ in range(3))
    gates = xproj.copy()  # (L, R, 4H): each step turns its slice into the gates in place
    grid, block = lstm_forward_launch(R, H, tiles, tf32)
    module = emu.load_kernels("lstm", tiles)
    for t in range(L):
        module.launch(lstm_step_kernel_name("forward", tf32), grid, block,
                      [gates, h, c, W_h, mask, h_out, R, H, int(act == "tanh"), use_mask, t])
    operand = ref.round_tf32 if tf32 else (lambda a: a)
    for t in range(L):  # the twin, one step at a time, from the kernel's previous state
        h_prev, c_prev = (h[t - 1], c[t - 1]) if t else (np.zeros((R, H), np.float32),) * 2
        want_h, want_c, want_gates = ref.lstm_step_forward(xproj[t].astype(np.float64), operand(h_prev).astype(np.float64),
                                                           c_prev.astype(np.float64), operand(W_h).astype(np.float64), act)
        np.testing.assert_allclose(gates[t], want_gates, atol=ATOL, rtol=RTOL)
        np.testing.assert_allclose(c[t], want_c, atol=ATOL, rtol=RTOL)
        np.testing.assert_allclose(h[t], want_h, atol=ATOL, rtol=RTOL)
    if use_mask:
        np.testing.assert_allclose(h_out, h * mask, atol=2 * ATOL, rtol=RTOL)
    else:
        assert np.isnan(h_out).all()  # not written without a mask


def test_output_loss_forward_matches_twin():
    rng = np.random.default_rng(3)
    M, Hp = 600, 9  # 3 blocks, the last one partial
    h = rng.standard_normal((M, Hp)).astype(np.float32)
    W = rng.standard_normal((2, Hp)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    y = (rng.random((M, 2)) < 0.4).astype(np.float32)
    y[:, 1] *= y[:, 0]
    P = np.full((M, 2), np.nan, np.float32)
    partial = np.full(blocks(M, 256), np.nan, np.float64)
    emu.load_kernels("output_loss").launch("output_loss_forward", len(partial), 256, [h, W, b, y, P, partial, M, Hp])
    want_P, want_loss = ref.output_loss_forward(h, W, b, y)
    np.testing.assert_allclose(P, want_P, atol=ATOL, rtol=RTOL)
    assert partial.sum() == pytest.approx(want_loss, rel=1e-5)


@pytest.mark.parametrize("seed,p", [(0, 0.5), (2**63 - 1, 0.25), (987654321, 0.0)])
def test_dropout_mask_hash_matches_twin_bit_for_bit(seed, p):
    n = 1000  # 4 blocks of 256, the last one partial
    masks = np.full(n, np.nan, np.float32)
    p32 = np.float32(p)
    emu.load_kernels("dropout").launch("dropout_mask_hash", blocks(n, 256), 256,
                             [np.array([seed], np.uint64), masks, n, p32, np.float32(1) / (np.float32(1) - p32)])
    want = ref.dropout_mask_hash(seed, n, p)
    np.testing.assert_array_equal(masks, want)
    kept = (want > 0).mean()
    assert abs(kept - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n) + 1e-9  # a fair coin, within 4 sigma
