"""kernels/lstm.cu on the CPU harness against its twins: lstm_step_forward / lstm_step_backward
(fp32) and lstm_step_forward_tf32 / lstm_step_backward_tf32 (tensor cores), every tile variant.

Tolerances: see kernel_helpers (a recurrent product of 4H terms summed in float32). The TF32
kernels are compared with their twins (the fp32 twins on TF32-rounded operands) in float64: the
harness's mma multiplies TF32 values exactly and sums in float, so the fp32 tolerance holds;
without the rounding the kernel would miss it by ~2^-11 of every product.
"""
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from biaxial_cu.backends import reference as ref
from biaxial_cu.backends.cuda import kernels
from biaxial_cu.backends.cuda.kernels import (LSTM_BACKWARD_TF32_TILES, LSTM_BACKWARD_TILES, LSTM_FORWARD_TF32_TILES,
                                              LSTM_FORWARD_TILES, lstm_backward_launch, lstm_forward_launch,
                                              lstm_step_kernel_name)
from kernel_helpers import ATOL, RTOL, ROOT, emu


@pytest.fixture(scope="module", autouse=True)
def variants_built_two_at_a_time():
    """Build the harness binaries of every tile variant before the tests, two g++ at once."""
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda tiles: emu.load_kernels("lstm", tiles), [None] + [t for _, _, t in VARIANTS]))


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


# shapes: smaller than a tile, several tiles with partial edges on both axes, exact tiles, H not a
# multiple of the k chunk (16); three steps, so step 0 (no recurrent product) and later steps run
@pytest.mark.parametrize("R,H", [(5, 3), (70, 37), (32, 32), (33, 20)])
@pytest.mark.parametrize("act", ["identity", "tanh"])
@pytest.mark.parametrize("use_mask", [0, 1])
def test_lstm_step_forward_matches_twin(R, H, act, use_mask):
    check_lstm_step_forward(R, H, act, use_mask)


# the TF32 tensor-core kernel on the same shapes (its tiles: 64 rows x 16 units, chunks of 16 k)
@pytest.mark.parametrize("R,H", [(5, 3), (70, 37), (33, 20)])
@pytest.mark.parametrize("act,use_mask", [("identity", 0), ("tanh", 1)])
def test_lstm_step_forward_tf32_matches_twin(R, H, act, use_mask):
    check_lstm_step_forward(R, H, act, use_mask, tf32=True)


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
    twin = ref.lstm_step_forward_tf32 if tf32 else ref.lstm_step_forward
    for t in range(L):  # the twin, one step at a time, from the kernel's previous state
        h_prev, c_prev = (h[t - 1], c[t - 1]) if t else (np.zeros((R, H), np.float32),) * 2
        want_h, want_c, want_gates = twin(f64(xproj[t]), f64(h_prev), f64(c_prev), f64(W_h), act)
        np.testing.assert_allclose(gates[t], want_gates, atol=ATOL, rtol=RTOL)
        np.testing.assert_allclose(c[t], want_c, atol=ATOL, rtol=RTOL)
        np.testing.assert_allclose(h[t], want_h, atol=ATOL, rtol=RTOL)
    if use_mask:
        np.testing.assert_allclose(h_out, h * mask, atol=2 * ATOL, rtol=RTOL)
    else:
        assert np.isnan(h_out).all()  # not written without a mask


# shapes: smaller than a tile; partial tiles on both axes with 4H (the k of the recurrent
# product) not a multiple of a chunk; several unit tiles (H > 32); rows over several row blocks
# (48 a block by default). Three steps backwards: the last one (no recurrent product), a middle
# one, and step 0 (no previous cell).
@pytest.mark.parametrize("R,H", [(7, 3), (45, 10), (33, 70), (100, 70)])
@pytest.mark.parametrize("act", ["identity", "tanh"])
@pytest.mark.parametrize("use_mask", [0, 1])
def test_lstm_step_backward_matches_twin(R, H, act, use_mask):
    check_lstm_step_backward(R, H, act, use_mask)


@pytest.mark.parametrize("R,H", [(7, 3), (45, 10), (33, 70), (97, 33)])
@pytest.mark.parametrize("act,use_mask", [("identity", 1), ("tanh", 0)])
def test_lstm_step_backward_tf32_matches_twin(R, H, act, use_mask):
    check_lstm_step_backward(R, H, act, use_mask, tf32=True)


def check_lstm_step_backward(R, H, act, use_mask, tiles=None, tf32=False):
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
    twin = ref.lstm_step_backward_tf32 if tf32 else ref.lstm_step_backward
    for t in range(L - 1, -1, -1):
        module.launch(lstm_step_kernel_name("backward", tf32), grid, block,
                      [dh_above, got, W_h, c, mask, R, H, int(act == "tanh"), use_mask, L, dc, dc_prev, t])
        # the twin in float64 from the kernel's own dpre of step t+1 and dc: this step alone
        want_dpre, want_dc = twin(f64(dh_above[t] * mask if use_mask else dh_above[t]),
                                  f64(got[t + 1]) if t + 1 < L else None, f64(dc), f64(gates[t]), f64(c[t]),
                                  f64(c[t - 1]) if t else np.zeros((R, H)), f64(W_h), act)
        np.testing.assert_allclose(got[t], want_dpre, atol=ATOL, rtol=RTOL, err_msg=f"step {t}")
        np.testing.assert_allclose(dc_prev, want_dc, atol=ATOL, rtol=RTOL, err_msg=f"step {t}")
        dc, dc_prev = dc_prev, dc


VARIANTS = ([("forward", False, t) for t in LSTM_FORWARD_TILES[1:]]
            + [("forward", True, t) for t in LSTM_FORWARD_TF32_TILES[1:]]
            + [("backward", False, t) for t in LSTM_BACKWARD_TILES[1:]]
            + [("backward", True, t) for t in LSTM_BACKWARD_TF32_TILES[1:]])


@pytest.mark.slow
@pytest.mark.parametrize("direction,tf32,tiles", VARIANTS, ids=str)
def test_tile_variant_matches_twin(direction, tf32, tiles):
    """Every tile variant (bench/lstm_tiles.py times them), compiled with its -D options, on
    shapes with partial tiles on both axes."""
    if direction == "forward":
        check_lstm_step_forward(70, 37, "tanh", 1, tiles, tf32)
    else:
        check_lstm_step_backward(45, 70, "tanh", 1, tiles, tf32)


def test_lstm_tiles_match_the_kernel_defines():
    """The default tiles (the first variant of each list, the launch geometry's defaults) are
    lstm.cu's #defines."""
    src = (ROOT / "kernels" / "lstm.cu").read_text()
    d = {m[0]: int(m[1]) for m in re.findall(r"#define (\w+) (\d+)", src)}
    assert d["TJ"] == 32
    assert kernels.LSTM_TILES == {k: d[k] for k in kernels.LSTM_TILES}
    assert kernels.LSTM_TC_TILES == {k: d[k] for k in kernels.LSTM_TC_TILES}
    for variants in (LSTM_FORWARD_TILES, LSTM_BACKWARD_TILES, LSTM_FORWARD_TF32_TILES, LSTM_BACKWARD_TF32_TILES):
        assert all(d[k] == v for k, v in variants[0].items()), variants[0]
