"""Backward and optimiser kernels on the CPU harness against their NumPy twins.

The elementwise backward kernels do the twin's arithmetic in the same order in float32, so
they agree to a few ulps: atol 1e-6, rtol 1e-5 (the 1/(...) of the loss gradient can reach
2^23 when P is 0 or 1; rtol covers it). Gradients of whole layers are checked on the GPU and,
through the twins, by finite differences (tests/test_reference.py).
"""
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda import lstm_backward_launch, lstm_step_kernel_name
from biaxial_cu.model import clip_segment_count

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cuda_emu"))
import emu  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from lstm_tiles import BACKWARD as BACKWARD_TILES  # noqa: E402
from lstm_tiles import BACKWARD_TF32 as BACKWARD_TF32_TILES  # noqa: E402


# shapes: smaller than a tile; partial tiles on both axes with 4H (the k of the recurrent
# product) not a multiple of the chunk of 16; two unit tiles (H > 64). Three steps backwards:
# the last one (no recurrent product), a middle one, and step 0 (no previous cell).
@pytest.mark.parametrize("R,H", [(7, 3), (45, 10), (33, 70)])
@pytest.mark.parametrize("act", ["identity", "tanh"])
@pytest.mark.parametrize("use_mask", [0, 1])
def test_lstm_step_backward_matches_twin(R, H, act, use_mask):
    check_lstm_step_backward(R, H, act, use_mask)


@pytest.mark.parametrize("tiles", BACKWARD_TILES[1:], ids=str)
def test_lstm_step_backward_tile_variants(tiles):
    """Every tile shape bench/lstm_tiles.py times, compiled with its -D options."""
    check_lstm_step_backward(45, 70, "tanh", 1, tiles)


@pytest.mark.parametrize("R,H", [(7, 3), (45, 10), (33, 70)])
@pytest.mark.parametrize("act,use_mask", [("identity", 1), ("tanh", 0)])
def test_lstm_step_backward_tf32_matches_twin(R, H, act, use_mask):
    """The TF32 tensor-core kernel against the twin on TF32-rounded dpre_next and W_h (see
    test_kernels_forward's TF32 test for why the fp32 tolerance applies)."""
    check_lstm_step_backward(R, H, act, use_mask, tf32=True)


@pytest.mark.parametrize("tiles", BACKWARD_TF32_TILES[1:], ids=str)
def test_lstm_step_backward_tf32_tile_variants(tiles):
    check_lstm_step_backward(45, 70, "tanh", 1, tiles, tf32=True)


def check_lstm_step_backward(R, H, act, use_mask, tiles=None, tf32=False):
    """Tolerance: the recurrent product sums 4H terms in float32, as the forward kernel's does
    (ATOL of test_kernels_forward); the elementwise rest agrees to a few ulps."""
    L = 3
    rng = np.random.default_rng(R + H + use_mask)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    W = (f32(4 * H, 2 * H) / np.sqrt(4 * H)).astype(np.float32)  # [W_x, W_h], x of size H
    h_all, (_, _, c, gates) = ref.lstm_layer_forward(f32(L, R, H), W, np.zeros(4 * H, np.float32), act)
    W_h = np.ascontiguousarray(W[:, H:])
    dh_above, mask = f32(L, R, H), ref.dropout_mask(rng, R, H, 0.5, np.float32)
    got = gates.copy()  # (L, R, 4H): the gates, each step's slice becomes its dpre
    dc, dc_prev = np.zeros((R, H), np.float32), np.full((R, H), np.nan, np.float32)
    grid, block = lstm_backward_launch(R, H, tiles, tf32)
    module = emu.load_kernels("lstm", tiles)
    operand = ref.round_tf32 if tf32 else (lambda a: a)
    for t in range(L - 1, -1, -1):
        module.launch(lstm_step_kernel_name("backward", tf32), grid, block,
                      [dh_above, got, W_h, c, mask, R, H, int(act == "tanh"), use_mask, L, dc, dc_prev, t])
        # the twin in float64 from the kernel's own dpre of step t+1 and dc: this step alone
        want_dpre, want_dc = ref.lstm_step_backward(
            (dh_above[t] * mask if use_mask else dh_above[t]).astype(np.float64),
            operand(got[t + 1]).astype(np.float64) if t + 1 < L else None, dc.astype(np.float64),
            gates[t].astype(np.float64), c[t].astype(np.float64),
            c[t - 1].astype(np.float64) if t else np.zeros((R, H)), operand(W_h).astype(np.float64), act)
        np.testing.assert_allclose(got[t], want_dpre, atol=2e-5, rtol=1e-5, err_msg=f"step {t}")
        np.testing.assert_allclose(dc_prev, want_dc, atol=2e-5, rtol=1e-5, err_msg=f"step {t}")
        dc, dc_prev = dc_prev, dc


def test_lstm_tiles_match_the_kernel_defines():
    """The launch geometry in backends/cuda.py follows lstm.cu's #defines."""
    from biaxial_cu.backends import cuda

    src = (ROOT / "kernels" / "lstm.cu").read_text()
    d = {m[0]: int(m[1]) for m in re.findall(r"#define (\w+) (\d+)", src)}
    assert d["TJ"] == 32
    assert cuda.LSTM_TILES == {k: d[k] for k in cuda.LSTM_TILES}
    assert cuda.LSTM_TC_TILES == {k: d[k] for k in cuda.LSTM_TC_TILES}
    sys.path.insert(0, str(ROOT / "bench"))
    from lstm_tiles import BACKWARD, BACKWARD_TF32, FORWARD, FORWARD_TF32  # the first variant is the default

    for variants in (FORWARD, BACKWARD, FORWARD_TF32, BACKWARD_TF32):
        assert all(d[k] == v for k, v in variants[0].items()), variants[0]


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


def flat_segments(model):
    """Flat parameter buffer order and segment offsets, as the cuda backend lays them out."""
    offsets, pos = [0], 0
    for name, p in model.params.items():
        n_seg = clip_segment_count(name)
        for _ in range(n_seg):
            pos += p.size // n_seg
            offsets.append(pos)
    return np.array(offsets, np.int32)


def test_segment_norms_and_adadelta_match_twins():
    model = Model((5, 4), (3, 2), backend="numpy", seed=0)
    rng = np.random.default_rng(5)
    names = list(model.params)
    # gradients: some segments above the clip norm, one all zero, the rest small
    grads = {n: (rng.standard_normal(p.shape) * rng.choice([0.01, 1.0, 10.0])).astype(np.float32)
             for n, p in model.params.items()}
    grads["time.1.b"][:4] = 0  # gate i of time.1.b: a zero segment
    offsets = flat_segments(model)
    g = np.concatenate([grads[n].ravel() for n in names])
    sq = np.full(len(offsets) - 1, np.nan, np.float64)
    mod = emu.load_kernels("adadelta")
    mod.launch("segment_sq_norms", len(sq), 256, [g, offsets, sq])
    want_sq = np.array([np.sum(g[a:b].astype(np.float64) ** 2) for a, b in zip(offsets[:-1], offsets[1:])])
    np.testing.assert_allclose(sq, want_sq, rtol=1e-12)
    assert (sq == 0).sum() == 1 and (np.sqrt(sq) > 5).any() and (np.sqrt(sq) < 5).any()
    w = np.concatenate([model.params[n].ravel() for n in names])
    Eg = np.zeros_like(w)
    Ex = np.zeros_like(w)
    for _ in range(2):  # two steps: the accumulators matter in the second
        mod.launch("adadelta_update", (w.size + 255) // 256, 256,
                   [w, g, Eg, Ex, offsets, sq, len(sq), w.size, 0.95, 1e-6, 5.0])
        for n in names:
            ref.adadelta_update(model.params[n], grads[n], model._opt[f"Eg/{n}"], model._opt[f"Ex/{n}"],
                                clip_segment_count(n))
    # w + d rounds to float32 at |w| < 1 (an ulp is at most 6e-8); the updates are ~4.5e-3 per
    # step, so atol 1e-7 still catches an update wrong by 1e-4 of itself.
    np.testing.assert_allclose(w, np.concatenate([model.params[n].ravel() for n in names]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Ex, np.concatenate([model._opt[f"Ex/{n}"].ravel() for n in names]), rtol=1e-5, atol=1e-12)
