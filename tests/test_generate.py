"""Tests of biaxial_cu.generate: compose on the CPU (MODEL_SPEC section 7).

The central check is test_compose_matches_plain_numpy: a slow, plain NumPy composer written
here from the spec (full W @ [x, h] products, one note at a time, no numba) must make the same
choices as compose for the same uniforms. The rest pins the contract: determinism, batches
equal single runs, the adaptive conservativity rule, extreme models, validation.
"""

import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.generate import ComposeTrace
from biaxial_cu.features import note_inputs_at
from biaxial_cu.generate import (
    compose,
    compose_trace,
    next_conservativity,
    seed_from_pieces,
    silent_seed,
)

N = 78
T_SIZES = (12, 10)
P_SIZES = (8, 6)


def small_model(seed=0, dtype="float32", cell_activation="identity", t_sizes=T_SIZES,
                p_sizes=P_SIZES):
    return Model(t_layer_sizes=t_sizes, p_layer_sizes=p_sizes, dropout=0.5,
                 cell_activation=cell_activation, backend="numpy", dtype=dtype, seed=seed)


def random_seed_state(rng, density=0.15):
    play = rng.random(N) < density  # (78,)
    artic = play & (rng.random(N) < 0.7)  # (78,)
    return np.stack([play, artic], axis=1).astype(np.uint8)  # (78, 2)


# ----------------------------------------------------------------------------- plain NumPy composer


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _lstm(W, b, x, h, c, activation):
    """One LSTM step straight from MODEL_SPEC 3: z = [x, h_prev], gates i, f, g, o."""
    z = np.concatenate([x, h], axis=-1)  # (..., I + H)
    a = z @ W.T + b  # (..., 4H)
    H = h.shape[-1]
    i, f, o = _sigmoid(a[..., :H]), _sigmoid(a[..., H:2 * H]), _sigmoid(a[..., 3 * H:])
    g = np.tanh(a[..., 2 * H:3 * H]) if activation == "tanh" else a[..., 2 * H:3 * H]
    c = f * c + i * g
    return o * np.tanh(c), c


def plain_compose(model, seed_state, uniforms, conservativity, adaptive):
    """(states (steps+1, 78, 2), probabilities (steps, 78, 2), cons used (steps,)), slowly."""
    params = model.params
    activation = model.config["cell_activation"]
    dtype = params["out.b"].dtype
    n_time = len(model.config["t_layer_sizes"])
    n_pitch = len(model.config["p_layer_sizes"])
    states = [np.asarray(seed_state, dtype=np.uint8)]
    probabilities, used = [], []
    h = [np.zeros((N, H), dtype) for H in model.config["t_layer_sizes"]]  # (78, H) each
    c = [np.zeros((N, H), dtype) for H in model.config["t_layer_sizes"]]
    cons = conservativity
    for t in range(len(uniforms)):
        x = note_inputs_at(states[-1][None], t, dtype=dtype)[0]  # (78, 80)
        for k in range(n_time):
            h[k], c[k] = _lstm(params[f"time.{k}.W"], params[f"time.{k}.b"], x, h[k], c[k],
                               activation)
            x = h[k]
        time_out = x  # (78, Ht)
        ph = [np.zeros(H, dtype) for H in model.config["p_layer_sizes"]]
        pc = [np.zeros(H, dtype) for H in model.config["p_layer_sizes"]]
        chosen = np.zeros((N, 2), dtype=np.uint8)
        probs = np.zeros((N, 2), dtype=dtype)
        previous = np.zeros(2, dtype)
        for n in range(N):
            y = np.concatenate([time_out[n], previous])
            for k in range(n_pitch):
                ph[k], pc[k] = _lstm(params[f"pitch.{k}.W"], params[f"pitch.{k}.b"], y, ph[k],
                                     pc[k], activation)
                y = ph[k]
            P = _sigmoid(params["out.W"] @ y + params["out.b"])  # (2,)
            play = uniforms[t, n, 0] < float(P[0]) ** cons
            artic = play and uniforms[t, n, 1] < float(P[1])
            chosen[n] = (play, artic)
            probs[n] = P
            previous = chosen[n].astype(dtype)
        used.append(cons)
        if adaptive:
            if chosen[:, 0].sum() < 2:
                cons = (1.0 if cons > 1 else cons) - 0.02
            else:
                cons = cons + (1 - cons) * 0.3
        states.append(chosen)
        probabilities.append(probs)
    return np.stack(states), np.stack(probabilities), np.array(used)


@pytest.mark.parametrize("dtype,activation,conservativity", [
    ("float64", "identity", 1.0),
    ("float32", "identity", 1.0),
    ("float32", "tanh", 1.7),
    ("float64", "tanh", 0.6),
])
def test_compose_matches_plain_numpy(dtype, activation, conservativity):
    model = small_model(seed=3, dtype=dtype, cell_activation=activation)
    rng = np.random.default_rng(11)
    seed_state = random_seed_state(rng)
    steps = 5
    uniforms = rng.random((steps, N, 2))
    expected, expected_probs, expected_cons = plain_compose(model, seed_state, uniforms,
                                                            conservativity, adaptive=True)
    got = compose(model, seed_state, steps, conservativity=conservativity, uniforms=uniforms)
    np.testing.assert_array_equal(got, expected)
    trace = compose_trace(model, seed_state[None], steps, conservativity=conservativity,
                          uniforms=uniforms[None])
    np.testing.assert_array_equal(trace.states[0], expected)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(trace.probabilities[0], expected_probs, rtol=tolerance,
                               atol=tolerance)
    assert trace.probabilities.dtype == np.dtype(dtype)
    np.testing.assert_allclose(trace.conservativity[0, :steps], expected_cons, rtol=0, atol=1e-15)
    # the test is only worth something if the model made real decisions both ways
    generated = expected[1:, :, 0]
    assert 0 < generated.sum() < generated.size


# ----------------------------------------------------------------------------- determinism, batches


def test_output_shape_dtype_and_seed_row():
    model = small_model()
    seed_state = random_seed_state(np.random.default_rng(0))
    piece = compose(model, seed_state, 7, rng=0)
    assert piece.shape == (8, N, 2) and piece.dtype == np.uint8
    np.testing.assert_array_equal(piece[0], seed_state)
    assert set(np.unique(piece)) <= {0, 1}
    assert np.all(piece[1:, :, 1] <= piece[1:, :, 0])  # articulate only when play

    pieces = compose(model, np.stack([seed_state, silent_seed()]).astype(bool), 4, rng=0)
    assert pieces.shape == (2, 5, N, 2) and pieces.dtype == np.uint8
    np.testing.assert_array_equal(pieces[1, 0], np.zeros((N, 2)))


def test_zero_steps_gives_the_seed():
    model = small_model()
    seed_state = random_seed_state(np.random.default_rng(1))
    np.testing.assert_array_equal(compose(model, seed_state, 0, rng=0), seed_state[None])
    assert compose(model, np.stack([seed_state] * 3), 0, rng=0).shape == (3, 1, N, 2)


def test_same_uniforms_same_piece_and_inputs_untouched():
    model = small_model(seed=5)
    rng = np.random.default_rng(2)
    seed_state = random_seed_state(rng)
    uniforms = rng.random((20, N, 2))
    params_before = {name: value.copy() for name, value in model.params.items()}
    seed_before, uniforms_before = seed_state.copy(), uniforms.copy()
    first = compose(model, seed_state, 20, uniforms=uniforms)
    second = compose(model, seed_state, 20, uniforms=uniforms)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(seed_state, seed_before)
    np.testing.assert_array_equal(uniforms, uniforms_before)
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, params_before[name])
    # an int seed and a Generator seeded alike draw the same uniforms
    by_int = compose(model, seed_state, 20, rng=9)
    by_generator = compose(model, seed_state, 20, rng=np.random.default_rng(9))
    by_uniforms = compose(model, seed_state, 20,
                          uniforms=np.random.default_rng(9).random((20, N, 2)))
    np.testing.assert_array_equal(by_int, by_generator)
    np.testing.assert_array_equal(by_int, by_uniforms)
    assert not np.array_equal(by_int, compose(model, seed_state, 20, rng=10))


def test_batch_equals_single_runs():
    model = small_model(seed=6)
    rng = np.random.default_rng(3)
    seeds = np.stack([random_seed_state(rng), silent_seed(), random_seed_state(rng, 0.4)])
    uniforms = rng.random((3, 30, N, 2))
    batch = compose(model, seeds, 30, conservativity=1.3, uniforms=uniforms)
    assert batch.shape == (3, 31, N, 2)
    for k in range(3):
        alone = compose(model, seeds[k], 30, conservativity=1.3, uniforms=uniforms[k])
        np.testing.assert_array_equal(batch[k], alone)
    assert not np.array_equal(batch[0], batch[1])
    # one seed as (78, 2) or as (1, 78, 2) with the same rng: the same piece
    np.testing.assert_array_equal(compose(model, seeds[0], 10, rng=4),
                                  compose(model, seeds[:1], 10, rng=4)[0])


# ----------------------------------------------------------------------------- conservativity


@pytest.mark.parametrize("cons,n_playing,expected", [
    (1.0, 0, 0.98),  # silence: step down
    (1.0, 1, 0.98),  # one note is still "fewer than 2"
    (0.5, 1, 0.48),
    (3.0, 0, 0.98),  # above 1: first back to 1, then down
    (0.01, 0, -0.01),  # it may go below zero (then every note plays)
    (1.0, 2, 1.0),  # enough notes: pulled towards 1
    (0.5, 10, 0.65),  # 0.5 + 0.5 * 0.3
    (2.0, 78, 1.7),  # 2 + (1 - 2) * 0.3
    (0.0, 5, 0.3),
])
def test_next_conservativity_hand_values(cons, n_playing, expected):
    got = next_conservativity(cons, n_playing)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-15)


def test_next_conservativity_elementwise():
    cons = np.array([1.0, 3.0, 0.5, 2.0])
    n_playing = np.array([0, 1, 10, 78])
    np.testing.assert_allclose(next_conservativity(cons, n_playing), [0.98, 0.98, 0.65, 1.7],
                               rtol=0, atol=1e-15)


def set_output_bias(model, play_bias, artic_bias, zero_weights=False):
    model.params["out.b"][...] = [play_bias, artic_bias]
    if zero_weights:
        model.params["out.W"][...] = 0


def test_silence_lowers_conservativity_by_002_per_step():
    model = small_model(seed=7)
    set_output_bias(model, -50.0, 0.0)
    trace = compose_trace(model, silent_seed()[None], 12, conservativity=3.0, rng=0)
    assert trace.states[0, 1:].sum() == 0  # P0 ~ e**-50: silence
    cons = trace.conservativity[0]  # (13,) value used at each step, last: after
    assert cons[0] == 3.0
    np.testing.assert_allclose(cons[1:], 1 - 0.02 * np.arange(1, 13), rtol=0, atol=1e-12)
    fixed = compose_trace(model, silent_seed()[None], 12, conservativity=3.0, adaptive=False,
                          rng=0)
    np.testing.assert_array_equal(fixed.conservativity[0], np.full(13, 3.0))


def test_adaptive_conservativity_end_to_end_breaks_the_silence():
    """P0 is the constant sigmoid(-50) (out.W = 0), every U = 0.5: all notes play exactly at
    the steps where 0.5 < P0 ** cons, cons following the rule from 1: silent for steps 1..50
    (cons 1, 0.98, ..., 0.02), all 78 notes at step 51 (cons ~ 0), then silence again."""
    model = small_model(seed=8)
    set_output_bias(model, -50.0, 50.0, zero_weights=True)
    steps = 80
    uniforms = np.full((steps, N, 2), 0.5)
    piece = compose(model, silent_seed(), steps, uniforms=uniforms)

    p_play = float(1 / (1 + np.exp(-np.float32(-50.0))))  # float32 sigmoid, widened
    cons, expected = 1.0, []
    for _ in range(steps):
        playing = 0.5 < p_play ** cons
        expected.append(playing)
        cons = next_conservativity(cons, N if playing else 0)
    playing = piece[1:, :, 0].sum(axis=1)  # (steps,)
    np.testing.assert_array_equal(playing, np.where(expected, N, 0))
    assert playing[:50].sum() == 0 and playing[50] == N  # S[1..50] silent, S[51] full
    np.testing.assert_array_equal(piece[51, :, 1], np.ones(N))  # P1 = 1: all struck
    assert 0 < sum(expected[51:]) < steps - 51  # after the burst it goes quiet, and back

    fixed = compose(model, silent_seed(), steps, uniforms=uniforms, adaptive=False)
    assert fixed[1:].sum() == 0


# ----------------------------------------------------------------------------- extreme models


def test_always_play_model_plays_every_note():
    model = small_model(seed=9)
    set_output_bias(model, 50.0, -50.0)
    uniforms = np.random.default_rng(5).random((6, N, 2))
    uniforms[0, :, 0] = np.nextafter(1.0, 0.0)  # the largest uniform below 1 still plays
    piece = compose(model, silent_seed(), 6, conservativity=2.5, uniforms=uniforms)
    assert np.all(piece[1:, :, 0] == 1)
    assert np.all(piece[1:, :, 1] == 0)  # P1 ~ 0: held, never struck again
    set_output_bias(model, 50.0, 50.0)
    piece = compose(model, silent_seed(), 6, uniforms=uniforms)
    assert np.all(piece[1:] == 1)


def test_silent_model_is_silent_and_never_articulates():
    model = small_model(seed=10)
    set_output_bias(model, -50.0, 50.0)  # articulate is likely, but only counts when playing
    seed_state = np.ones((N, 2), dtype=np.uint8)
    piece = compose(model, seed_state, 6, adaptive=False, rng=1)
    np.testing.assert_array_equal(piece[0], seed_state)
    assert piece[1:].sum() == 0


# ----------------------------------------------------------------------------- backends


class RecordingEngine:
    """A backend that records what compose hands it and answers with the seeds held."""

    def __init__(self):
        self.calls = []

    def compose(self, seeds, steps, conservativity, adaptive, uniforms, positions):
        self.calls.append((seeds, steps, conservativity, adaptive, uniforms, positions))
        states = np.repeat(seeds[:, None], steps + 1, axis=1)  # (K, steps + 1, 78, 2)
        return ComposeTrace(states=states, probabilities=np.zeros((len(seeds), steps, N, 2), np.float32),
                            conservativity=np.full((len(seeds), steps + 1), conservativity))


def test_the_backend_gets_validated_inputs():
    """compose checks the arguments and draws the uniforms itself (the same random stream for
    every backend), then hands them to the model's backend."""
    model = small_model(seed=13)
    model.engine = RecordingEngine()
    seed_state = random_seed_state(np.random.default_rng(7))
    piece = compose(model, seed_state, 4, conservativity=2, adaptive=False, rng=3)
    assert piece.shape == (5, N, 2)
    (seeds, steps, cons, adaptive, uniforms, positions), = model.engine.calls
    assert seeds.shape == (1, N, 2) and seeds.dtype == np.uint8
    assert steps == 4 and cons == 2.0 and isinstance(cons, float) and adaptive is False
    assert uniforms.shape == (1, 4, N, 2) and uniforms.dtype == np.float64
    np.testing.assert_array_equal(uniforms[0], np.random.default_rng(3).random((4, N, 2)))
    np.testing.assert_array_equal(positions, [[0, 1, 2, 3]])  # the original's: steps from the seed
    with pytest.warns(UserWarning, match="never saw bars of 12 steps"):
        compose(model, seed_state, 4, rng=3, meter="3/4", bar_position=10)
    np.testing.assert_array_equal(model.engine.calls[-1][-1], [[10, 11, 0, 1]])


def test_a_backend_answer_of_the_wrong_shape_is_an_error():
    model = small_model(seed=13)
    model.engine = RecordingEngine()
    model.engine.compose = lambda seeds, steps, *rest: ComposeTrace(np.zeros((1, steps, N, 2), np.uint8), None, None)
    with pytest.raises(RuntimeError, match="expected"):
        compose(model, silent_seed(), 3, rng=0)


class HostArray:
    """Looks like a device array to compose: .get() returns the numpy array."""

    def __init__(self, array):
        self.array = array

    def get(self):
        return self.array.copy()


class ParamHolder:
    """Not a Model: parameters (device-like arrays) and a config."""

    def __init__(self, model):
        self.config = model.config
        self.params = {name: HostArray(value) for name, value in model.params.items()}


def test_an_object_with_params_composes_on_the_cpu():
    model = small_model(seed=12)
    seed_state = random_seed_state(np.random.default_rng(6))
    np.testing.assert_array_equal(compose(ParamHolder(model), seed_state, 8, rng=3),
                                  compose(model, seed_state, 8, rng=3))
    with pytest.raises(TypeError, match="params"):
        compose(object(), silent_seed(), 3, rng=0)


def test_no_seeds_compose_to_no_pieces():
    assert compose(small_model(), np.zeros((0, N, 2)), 3, rng=0).shape == (0, 4, N, 2)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(seed_state=np.zeros((77, 2))), ValueError, "shape"),
    (dict(seed_state=np.zeros((2, 3, N, 2))), ValueError, "shape"),
    (dict(seed_state=np.full((N, 2), 2)), ValueError, "0 and 1"),
    (dict(seed_state=np.full((N, 2), "a")), ValueError, "0 and 1"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(steps=2.0), TypeError, "steps"),
    (dict(steps=True), TypeError, "steps"),
    (dict(conservativity=0), ValueError, "conservativity"),
    (dict(conservativity=-1.0), ValueError, "conservativity"),
    (dict(conservativity=float("nan")), ValueError, "conservativity"),
    (dict(conservativity=float("inf")), ValueError, "conservativity"),
    (dict(conservativity="1"), TypeError, "conservativity"),
    (dict(adaptive=None), TypeError, "adaptive"),
    (dict(rng="seed"), TypeError, "rng"),
    (dict(uniforms=np.zeros((3, N, 2))), ValueError, r"shape \(4, 78, 2\)"),
    (dict(uniforms=np.full((4, N, 2), 1.0)), ValueError, r"\[0, 1\)"),
    (dict(uniforms=np.full((4, N, 2), -0.1)), ValueError, r"\[0, 1\)"),
    (dict(uniforms=np.full((4, N, 2), np.nan)), ValueError, r"\[0, 1\)"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    model = small_model()
    arguments = dict(seed_state=silent_seed(), steps=4)
    arguments.update(kwargs)
    seed_state, steps = arguments.pop("seed_state"), arguments.pop("steps")
    with pytest.raises(error, match=match):
        compose(model, seed_state, steps, **arguments)


def test_batch_uniforms_must_match_the_batch():
    model = small_model()
    with pytest.raises(ValueError, match=r"shape \(2, 3, 78, 2\)"):
        compose(model, np.zeros((2, N, 2)), 3, uniforms=np.zeros((3, N, 2)))


def test_broken_parameters_are_reported():
    model = small_model()
    model.params["pitch.0.W"] = model.params["pitch.0.W"][:, :-1]
    with pytest.raises(ValueError, match="pitch.0.W"):
        compose(model, silent_seed(), 2, rng=0)
    model = small_model()
    del model.params["out.b"]
    with pytest.raises(ValueError, match="out.b"):
        compose(model, silent_seed(), 2, rng=0)
    model = small_model()
    model.params["time.1.b"][0] = np.nan
    with pytest.raises(ValueError, match="time.1.b"):
        compose(model, silent_seed(), 2, rng=0)


# ----------------------------------------------------------------------------- seeds


def labelled_piece(piece_id, n_steps):
    """A piece whose step t spells piece_id * 1000 + t in binary across notes 0..19."""
    labels = piece_id * 1000 + np.arange(n_steps)  # (T,)
    bits = (labels[:, None] >> np.arange(20)[None, :]) & 1  # (T, 20)
    S = np.zeros((n_steps, N, 2), dtype=np.uint8)
    S[:, :20, 0] = bits
    return S


def label_of(state):
    return int((state[:20, 0].astype(np.int64) << np.arange(20)).sum())


def test_seed_from_pieces_is_step_0_of_a_training_segment():
    lengths = {"a.mid": 100, "b.mid": 128, "c.mid": 200}  # a is too short to train on
    pieces = {key: labelled_piece(i, T) for i, (key, T) in enumerate(sorted(lengths.items()))}
    seen = set()
    for seed in range(60):
        state = seed_from_pieces(pieces, rng=seed)
        assert state.shape == (N, 2) and state.dtype == np.uint8
        piece_id, start = divmod(label_of(state), 1000)
        T = lengths[sorted(lengths)[piece_id]]
        assert T >= 128 and start % 16 == 0 and start <= T - 128
        seen.add((piece_id, start))
    assert seen == {(1, 0), (2, 0), (2, 16), (2, 32), (2, 48), (2, 64)}
    np.testing.assert_array_equal(seed_from_pieces(pieces, rng=4), seed_from_pieces(pieces, rng=4))
    as_list = seed_from_pieces([pieces[key] for key in sorted(pieces)], rng=np.random.default_rng(4))
    np.testing.assert_array_equal(as_list, seed_from_pieces(pieces, rng=4))
    with pytest.raises(ValueError, match="seq_len"):
        seed_from_pieces({"a.mid": labelled_piece(0, 100)}, rng=0)


def test_silent_seed():
    seed_state = silent_seed()
    assert seed_state.shape == (N, 2) and seed_state.dtype == np.uint8 and seed_state.sum() == 0


@pytest.mark.parametrize("meters", ["original", "all"])
def test_generate_in_a_meter_writes_its_signature_and_bar_lines(tmp_path, capsys, meters):
    """generate --meter 3/4: bars of 12 steps from the seed, the time signature in the MIDI file
    (read back with meters "all": the same positions), a PNG; a model read with meters
    "original" is warned about, one line."""
    from biaxial_cu import generate
    from biaxial_cu.midi import read_state_matrix

    Model((8,), (6, 4), backend="numpy", seed=3, meters=meters).save(tmp_path / "m.npz")
    code = generate.main([str(tmp_path / "m.npz"), "--out", str(tmp_path / "p.mid"), "--steps", "40",
                          "--silent-seed", "--backend", "numpy", "--meter", "3/4"])
    err = capsys.readouterr().err
    assert code == 0, err
    S, pos = read_state_matrix(tmp_path / "p.mid", meters="all", return_bar_positions=True)
    np.testing.assert_array_equal(pos[:41], np.arange(41) % 12)
    assert (tmp_path / "p.png").stat().st_size > 0
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warned) == (meters == "original") and all("never saw bars of 12 steps" in w for w in warned)
