"""The NumPy reference: gradients by central finite differences in float64.

Relative error |analytic - numeric| / max(|analytic|, |numeric|, 1e-2) must stay below 1e-6.
The numeric derivative is the fourth-order central stencil with step 1e-3: a truncation error
of order 1e-12 * f^(5) and a rounding error of order |L| * 1e-16 / 1e-3 (below 1e-10 for the
losses here, |L| up to ~600), far below that. (The second-order stencil at 1e-5 left ~1e-8 of
rounding noise on a loss of 557: at the 1e-6 bound for a gradient of 2.5e-3.) The floor 1e-2
keeps entries whose gradient is nearly zero from comparing rounding noise.
"""
import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.backends import reference as ref

STEP = 1e-3
TOL = 1e-6


def rel_err(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-2)


def random_batch(rng, B=2, T=5, density=0.3):
    S = (rng.random((B, T, 78, 2)) < density).astype(np.uint8)
    S[..., 1] *= S[..., 0]
    return S


def sample_indices(rng, shape, count):
    """Random entries of a tensor, plus a few from each gate block of an LSTM tensor."""
    size = int(np.prod(shape))
    flat = set(rng.choice(size, size=min(count, size), replace=False).tolist())
    if shape[0] % 4 == 0 and shape[0] >= 4:
        block = size // 4
        flat |= {g * block + int(rng.integers(block)) for g in range(4)}
    return [np.unravel_index(i, shape) for i in sorted(flat)]


def bar_positions_of(kind, B, T):
    """None (the original's: each step's index in its segment) or (B, T) positions of 6-step
    bars (3/8) from bar positions 4 and 1, so the beat inputs wrap inside the batch."""
    return None if kind == "original" else np.stack([(4 + np.arange(T)) % 6, (1 + np.arange(T)) % 6])[:B]


def check_model_gradients(model, batch, masks, rng, count=30, positions=None):
    loss, grads = model.gradients(batch, masks, positions)

    def loss_with_masks():
        return model.engine.loss(batch, masks, positions)

    assert loss == pytest.approx(loss_with_masks(), rel=1e-12)
    for name, p in model.params.items():
        assert grads[name].shape == p.shape
        for idx in sample_indices(rng, p.shape, count):
            numeric = central_difference(loss_with_masks, p, idx)
            assert rel_err(grads[name][idx], numeric) < TOL, (name, idx, grads[name][idx], numeric)


@pytest.mark.parametrize("meters", ["original", "all"])
@pytest.mark.parametrize("act", ["identity", "tanh"])
def test_gradients_no_dropout(act, meters):
    rng = np.random.default_rng(1)
    model = Model((6, 5), (4, 3), dropout=0.0, cell_activation=act, backend="numpy",
                  dtype="float64", seed=3, meters=meters)
    check_model_gradients(model, random_batch(rng), None, rng, positions=bar_positions_of(meters, 2, 5))


@pytest.mark.parametrize("meters", ["original", "all"])
@pytest.mark.parametrize("act", ["identity", "tanh"])
def test_gradients_fixed_dropout_mask(act, meters):
    rng = np.random.default_rng(2)
    model = Model((6, 5), (4, 3), dropout=0.5, cell_activation=act, backend="numpy",
                  dtype="float64", seed=4)
    batch = random_batch(rng, B=2, T=4)
    masks = model.dropout_masks(2, 4)
    assert set(masks) == {"time.0", "time.1", "pitch.0", "pitch.1"}
    assert masks["time.0"].shape == (2 * 78, 6) and masks["pitch.1"].shape == (2 * 3, 3)
    assert set(np.unique(masks["time.0"])) <= {0.0, 2.0}
    check_model_gradients(model, batch, masks, rng, positions=bar_positions_of(meters, 2, 4))


@pytest.mark.slow
def test_single_layer_stacks_all_entries():
    """One layer per stack: every entry of every tensor."""
    rng = np.random.default_rng(5)
    model = Model((3,), (2,), dropout=0.0, cell_activation="tanh", backend="numpy",
                  dtype="float64", seed=5)
    check_model_gradients(model, random_batch(rng, B=1, T=3), None, rng, count=10**6)


def central_difference(f, x, idx):
    """d f / d x[idx] by the fourth-order central stencil, x restored afterwards."""
    old = x[idx]
    values = {}
    for k in (-2, -1, 1, 2):
        x[idx] = old + k * STEP
        values[k] = f()
    x[idx] = old
    return (8 * (values[1] - values[-1]) - (values[2] - values[-2])) / (12 * STEP)


def numeric_grad(f, x):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        g[idx] = central_difference(f, x, idx)
    return g


@pytest.mark.parametrize("act", ["identity", "tanh"])
def test_lstm_step_backward_finite_differences(act):
    rng = np.random.default_rng(6)
    R, H = 3, 4
    xproj = rng.standard_normal((R, 4 * H))
    h_prev, c_prev = rng.standard_normal((R, H)), rng.standard_normal((R, H))
    W_h = rng.standard_normal((4 * H, H)) * 0.5
    wh, wc = rng.standard_normal((R, H)), rng.standard_normal((R, H))  # a linear read-out of h, c

    def f():
        h, c, _ = ref.lstm_step_forward(xproj, h_prev, c_prev, W_h, act)
        return float(np.sum(wh * h) + np.sum(wc * c))

    h, c, gates = ref.lstm_step_forward(xproj, h_prev, c_prev, W_h, act)
    dpre, dc_prev = ref.lstm_step_backward(wh, None, wc, gates, c, c_prev, W_h, act)
    # dpre is the gradient wrt xproj (pre = xproj + h_prev W_h^T); h_prev's is dpre W_h, which
    # the previous step's backward adds (its dpre_next)
    dh_prev = dpre @ W_h
    for got, x in ((dpre, xproj), (dh_prev, h_prev), (dc_prev, c_prev)):
        num = numeric_grad(f, x)
        assert np.max(np.abs(got - num)) < 1e-8 * max(1.0, np.max(np.abs(num)))


def test_output_loss_backward_finite_differences():
    rng = np.random.default_rng(7)
    h = rng.standard_normal((4, 3, 5))
    W, b = rng.standard_normal((2, 5)), rng.standard_normal(2)
    y = (rng.random((4, 3, 2)) < 0.5).astype(np.float64)
    y[..., 1] *= y[..., 0]
    logits = h @ W.T + b

    def f():  # the loss as a function of the logits
        return _loss_from_P(ref.sigmoid(logits), y)

    P, _ = ref.output_loss_forward(h, W, b, y)
    num = numeric_grad(f, logits)
    assert np.max(np.abs(ref.output_loss_backward(P, y) - num)) < 1e-7


def _loss_from_P(P, y):
    e = 2.0 ** -23
    P0, P1, y0, y1 = P[..., 0], P[..., 1], y[..., 0], y[..., 1]
    return -float(np.sum(np.log(2 * P0 * y0 - P0 - y0 + 1 + e) + y0 * np.log(2 * P1 * y1 - P1 - y1 + 1 + e)))


def test_pitch_inputs_layout_and_inverse():
    rng = np.random.default_rng(8)
    B, L, Ht = 2, 3, 4
    time_out = rng.standard_normal((L, B * 78, Ht))
    S = (rng.random((B, L + 1, 78, 2)) < 0.5).astype(np.uint8)  # the batch; its targets are S[:, 1:]
    targets = S[:, 1:]
    x = ref.pitch_inputs(time_out, S)
    assert x.shape == (78, B * L, Ht + 2)
    for b in range(B):
        for t in range(L):
            for n in (0, 1, 40, 77):
                r = b * L + t
                np.testing.assert_array_equal(x[n, r, :Ht], time_out[t, b * 78 + n])
                want = targets[b, t, n - 1] if n > 0 else [0, 0]
                np.testing.assert_array_equal(x[n, r, Ht:], want)
    np.testing.assert_array_equal(ref.pitch_to_time(x, B, Ht), time_out)
