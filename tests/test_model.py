"""Model API: loss by hand, Adadelta and clipping by hand, seeds, checkpoints, training."""
import json
import math
import zipfile

import numpy as np
import pytest

from biaxial_cu import CheckpointError, Model
from biaxial_cu.backends import reference as ref
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir
from biaxial_cu.model import TF32_ENV
from biaxial_cu.params import mask_shapes, segment_offsets

TINY = dict(t_layer_sizes=(5, 4), p_layer_sizes=(3, 2), backend="numpy")


def random_batch(seed, B=2, T=6):
    rng = np.random.default_rng(seed)
    S = (rng.random((B, T, 78, 2)) < 0.2).astype(np.uint8)
    S[..., 1] *= S[..., 0]
    return S


def test_param_names_and_shapes():
    m = Model((7, 6), (5, 4), backend="numpy", seed=0)
    want = {"time.0.W": (28, 87), "time.0.b": (28,), "time.1.W": (24, 13), "time.1.b": (24,),
            "pitch.0.W": (20, 6 + 2 + 5), "pitch.0.b": (20,), "pitch.1.W": (16, 9),
            "pitch.1.b": (16,), "out.W": (2, 4), "out.b": (2,)}
    assert {k: v.shape for k, v in m.params.items()} == want
    assert all(v.dtype == np.float32 for v in m.params.values())
    assert m.parameter_count() == sum(int(np.prod(s)) for s in want.values())


def test_original_initialisation_scale():
    m = Model(backend="numpy", seed=0)
    assert np.std(m.params["time.0.W"]) == pytest.approx(1 / 300, rel=0.02)
    assert np.std(m.params["pitch.1.W"]) == pytest.approx(1 / 50, rel=0.05)
    assert np.std(np.concatenate([m.params["out.W"].ravel(), m.params["out.b"]])) < 1.5


def test_loss_by_hand():
    """All weights zero but out.b: every h is 0 (g = 0 so c = 0), P = sigmoid(out.b) everywhere.

    out.b = [0, log 3] -> P0 = 1/2, P1 = 3/4. Target step: 3 notes play, 2 of them struck.
    L = -(3 log(1/2+e) + 75 log(1/2+e) + 2 log(3/4+e) + 1 log(1/4+e)), e = 2^-23
      = 78 * 0.6931 + 2 * 0.2877 + 1.3863 = 56.02711919832377.
    """
    m = Model((3,), (2,), dropout=0.0, backend="numpy", dtype="float64", seed=0)
    for p in m.params.values():
        p[...] = 0
    m.params["out.b"][:] = [0.0, math.log(3.0)]
    S = np.zeros((1, 2, 78, 2), np.uint8)
    S[0, 0, 10] = 1  # the input step does not matter here
    S[0, 1, [5, 20, 40], 0] = 1
    S[0, 1, [5, 40], 1] = 1
    assert m.loss(S) == pytest.approx(56.02711919832377, rel=1e-12)
    m32 = Model((3,), (2,), dropout=0.0, backend="numpy", seed=0)
    for name, p in m32.params.items():
        p[...] = m.params[name]
    assert m32.loss(S) == pytest.approx(56.02711919832377, rel=1e-6)


def test_clipping_and_adadelta_by_hand():
    """time.0.W of a model with H = 1: each gate block is one row of 81 columns.

    Gradient rows (gate i, f, g, o), nonzero in columns 0, 1 only:
      i: (3, 4)     norm 5   -> kept (min(5, 5)/5 = 1)
      f: (6, 8)     norm 10  -> halved to (3, 4)
      g: (0, 0)     norm 0   -> left as it is
      o: (0.3, 0.4) norm 0.5 -> kept
    Adadelta (rho 0.95, eps 1e-6), two steps with the same gradient g:
      Eg1 = 0.05 g^2, d1 = -sqrt(1e-6 / (Eg1 + 1e-6)) g, Ex1 = 0.05 d1^2,
      Eg2 = 0.95 Eg1 + 0.05 g^2, d2 = -sqrt((Ex1 + 1e-6) / (Eg2 + 1e-6)) g.
      g = 3:   d1 = -3 sqrt(1e-6/0.450001) = -0.004472130985967911, d1 + d2 = -0.009001234025695241
      g = 4:   d1 = -0.0044721331599172276,                         d1 + d2 = -0.009001238429514793
      g = 0.3: d1 = -0.004471639133806578,                          d1 + d2 = -0.009000237669730633
      g = 0.4: d1 = -0.004471856472703584,                          d1 + d2 = -0.0090006779379233
    """
    g = np.zeros((4, 81))
    g[0, :2] = 3, 4
    g[1, :2] = 6, 8
    g[3, :2] = 0.3, 0.4
    offsets = np.arange(5) * 81  # the four gate blocks as segments of the flat buffer
    sq = ref.segment_sq_norms(g.ravel(), offsets)
    np.testing.assert_allclose(sq, [25, 100, 0, 0.25], rtol=1e-15)
    w, Eg, Ex = np.zeros_like(g), np.zeros_like(g), np.zeros_like(g)  # (4, 81): .ravel() are views
    ref.adadelta_update(w.ravel(), g.ravel(), Eg.ravel(), Ex.ravel(), offsets, sq)
    np.testing.assert_allclose(w[0, :2], [-0.004472130985967911, -0.0044721331599172276], rtol=1e-12)
    np.testing.assert_allclose(w[1, :2], [-0.004472130985967911, -0.0044721331599172276], rtol=1e-12)
    np.testing.assert_allclose(w[3, :2], [-0.004471639133806578, -0.004471856472703584], rtol=1e-12)
    np.testing.assert_allclose(Ex[0, 0], 9.99997777782716e-07, rtol=1e-12)
    ref.adadelta_update(w.ravel(), g.ravel(), Eg.ravel(), Ex.ravel(), offsets, sq)
    np.testing.assert_allclose(w[0, :2], [-0.009001234025695241, -0.009001238429514793], rtol=1e-12)
    np.testing.assert_allclose(w[3, :2], [-0.009000237669730633, -0.0090006779379233], rtol=1e-12)
    assert not w[2].any() and not w[:, 2:].any()
    # the Model's segments: every gate block of an LSTM tensor, out.W and out.b whole
    m = Model((1,), (1,), dropout=0.0, backend="numpy", dtype="float64", seed=0)
    assert m.params["time.0.W"].shape == (4, 81)
    sizes = np.diff(segment_offsets({n: p.shape for n, p in m.params.items()}))
    assert list(sizes) == [81] * 4 + [1] * 4 + [4] * 4 + [1] * 4 + [2, 2]


def test_seeded_reproducibility_and_dtypes():
    S = random_batch(1)
    a, b = Model(**TINY, seed=7), Model(**TINY, seed=7)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    la = [a.train_step(S) for _ in range(3)]
    lb = [b.train_step(S) for _ in range(3)]
    assert la == lb and a.step == 3
    c = Model(**TINY, seed=8)
    assert not np.array_equal(a.params["time.0.W"], c.params["time.0.W"])
    m64 = Model(**TINY, seed=7, dtype="float64", dropout=0.0)
    m32 = Model(**TINY, seed=7, dropout=0.0)
    assert m32.loss(S) == pytest.approx(m64.loss(S), rel=1e-5)


def test_gradients_use_dropout_and_loss_does_not():
    S = random_batch(2)
    m = Model(**TINY, seed=1, dropout=0.5)
    assert m.loss(S) == m.loss(S)
    l1, _ = m.gradients(S)
    l2, _ = m.gradients(S)
    assert l1 != l2  # fresh masks each call
    masks = m.dropout_masks(2, 6)
    assert m.gradients(S, masks)[0] == m.gradients(S, masks)[0]


def masked_model():
    """A (2, 6) batch, a model with dropout, its good masks and a copy of its parameters."""
    m = Model(**TINY, seed=1, dropout=0.5)
    return random_batch(2), m, m.dropout_masks(2, 6), {k: v.copy() for k, v in m.params.items()}


def test_masks_must_name_exactly_the_models_layers_with_their_shapes():
    S, m, good, before = masked_model()
    with pytest.raises(ValueError, match=r"missing 4: time\.0, time\.1, pitch\.0 and 1 more.*dropout=0\.0"):
        m.train_step(S, masks={})  # not "no dropout": refused
    partial = {k: v for k, v in good.items() if k != "pitch.1"}
    with pytest.raises(ValueError, match=r"missing pitch\.1") as e:
        m.gradients(S, partial)
    assert "KeyError" not in str(e.value)
    with pytest.raises(ValueError, match=r"unexpected time\.9"):
        m.train_step(S, dict(good, **{"time.9": good["time.0"]}))
    with pytest.raises(ValueError, match=r"pitch\.0 \(7, 3\) \(needs \(10, 3\)\)"):
        m.train_step(S, dict(good, **{"pitch.0": np.ones((7, 3))}))
    with pytest.raises(ValueError, match="masks must be None or a dict"):
        m.gradients(S, [1, 2])
    assert m.step == 0 and all((m.params[k] == before[k]).all() for k in before)
    assert m.gradients(S, good)[0] == m.gradients(S, good)[0]


def test_masks_must_hold_finite_real_numbers_named_by_layer():
    S, m, good, before = masked_model()
    nan = dict(good, **{"time.1": np.full(good["time.1"].shape, np.nan)})
    with pytest.raises(ValueError, match=r"masks\['time\.1'\] holds NaN or infinite"):
        m.train_step(S, nan)
    inf = dict(good, **{"pitch.0": np.where(good["pitch.0"] > 0, np.inf, 0.0)})
    with pytest.raises(ValueError, match=r"masks\['pitch\.0'\] holds NaN or infinite"):
        m.gradients(S, inf)
    text = dict(good, **{"pitch.1": np.full(good["pitch.1"].shape, "1")})
    with pytest.raises(ValueError, match=r"masks\['pitch\.1'\] must hold real numbers.*<U1"):
        m.train_step(S, text)
    assert m.step == 0 and all((m.params[k] == before[k]).all() for k in before)
    assert all(np.isfinite(v).all() for v in m.params.values())
    ints = {k: (v > 0).astype(np.int8) for k, v in good.items()}  # whole numbers are fine
    assert np.isfinite(m.gradients(S, ints)[0])


def test_no_dropout_is_a_model_with_dropout_zero():
    """masks=None on a dropout=0 model is the plain gradient, equal to all-ones masks."""
    S = random_batch(3)
    plain = Model(**TINY, seed=1, dropout=0.0)
    ones = {k: np.ones(shape) for k, shape in mask_shapes(plain.config, 2, 6).items()}
    assert plain.gradients(S)[0] == pytest.approx(plain.gradients(S, ones)[0], rel=1e-6)
    assert plain.gradients(S)[0] == pytest.approx(plain.loss(S), rel=1e-6)


@pytest.mark.parametrize("bad", [
    np.zeros((2, 1, 78, 2)), np.zeros((2, 4, 77, 2)), np.zeros((4, 78, 2)), np.full((1, 3, 78, 2), 2)])
def test_bad_batches(bad):
    with pytest.raises(ValueError):
        Model(**TINY, seed=0).loss(bad)


@pytest.mark.parametrize("kwargs", [
    dict(t_layer_sizes=()), dict(t_layer_sizes=(0,)), dict(p_layer_sizes=(3.5,)), dict(dropout=1.0),
    dict(dropout=-0.1), dict(dropout=True), dict(dropout="0.5"), dict(cell_activation="relu"),
    dict(dtype="float16"), dict(backend="opencl")])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        Model(**{**TINY, **kwargs})


def test_numpy_scalar_arguments_are_accepted():
    m = Model(t_layer_sizes=np.array([5, 4]), p_layer_sizes=(np.int64(3), 2), dropout=np.float32(0.25),
              backend="numpy", seed=0)
    assert m.config["t_layer_sizes"] == [5, 4] and m.config["dropout"] == 0.25
    json.dumps(m.config)


def test_cuda_backend_without_gpu_is_a_clear_error():
    from biaxial_cu.model import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is None:
        pytest.skip("a GPU is usable here")
    with pytest.raises(RuntimeError, match="cuda"):
        Model(**{**TINY, "backend": "cuda"})
    assert Model(**{**TINY, "backend": "auto"}).backend == "numpy"


def test_checkpoint_round_trip_and_resume_is_exact(tmp_path):
    """train 6 steps == train 3, save, load, train 3 more: bit-identical (dropout on)."""
    S = random_batch(3)
    straight = Model(**TINY, seed=5, dropout=0.5)
    for _ in range(6):
        straight.train_step(S)
    first = Model(**TINY, seed=5, dropout=0.5)
    for _ in range(3):
        first.train_step(S)
    first.save(tmp_path / "c.npz")
    resumed = Model.load(tmp_path / "c.npz", backend="numpy")
    assert resumed.step == 3 and resumed.config == first.config
    for name in first.params:
        np.testing.assert_array_equal(resumed.params[name], first.params[name])
        np.testing.assert_array_equal(resumed.opt[f"Eg/{name}"], first.opt[f"Eg/{name}"])
    for _ in range(3):
        resumed.train_step(S)
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name])
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_forward_gives_every_layer_and_the_loss_of_its_probabilities():
    """Model.forward (what inspect shows): each layer's outputs by piece, step and note, and
    probabilities whose summed loss is model.loss; the same masks-free pass as loss."""
    model = Model(**TINY, seed=1)
    S = random_batch(4)
    loss, acts = model.forward(S)
    assert loss == model.loss(S)
    assert {k: v.shape for k, v in acts.items()} == {
        "time.0": (2, 5, 78, 5), "time.1": (2, 5, 78, 4), "pitch.0": (2, 5, 78, 3), "pitch.1": (2, 5, 78, 2),
        "probabilities": (2, 5, 78, 2)}
    assert ref.summed_loss(acts["probabilities"], S[:, 1:]) == pytest.approx(loss, rel=1e-6)
    # piece 1's note 10 at step 3 of the last pitch layer gives P through the output layer
    P = ref.sigmoid(acts["pitch.1"][1, 3, 10] @ model.params["out.W"].T + model.params["out.b"])
    np.testing.assert_allclose(acts["probabilities"][1, 3, 10], P, rtol=1e-6)
    # the time stack sees piece 0 alone: its outputs do not depend on piece 1
    _, alone = model.forward(S[:1])
    np.testing.assert_allclose(alone["time.1"][0], acts["time.1"][0], rtol=1e-6, atol=1e-7)


def test_tf32_is_recorded_in_the_checkpoint_and_kept_on_load(tmp_path, monkeypatch):
    monkeypatch.delenv(TF32_ENV, raising=False)
    model = Model(**TINY, seed=0, tf32=True)
    assert model.tf32 and model.config["tf32"] is True  # the numpy reference ignores it
    model.save(tmp_path / "t.npz")
    assert Model.load(tmp_path / "t.npz", backend="numpy").tf32 is True
    assert Model.load(tmp_path / "t.npz", backend="numpy", tf32=False).tf32 is False
    assert Model(**TINY, seed=0).tf32 is False
    monkeypatch.setenv(TF32_ENV, "1")  # the environment overrides the argument
    assert Model(**TINY, seed=0).tf32 is True
    monkeypatch.setenv(TF32_ENV, "0")
    assert Model.load(tmp_path / "t.npz", backend="numpy").tf32 is False
    monkeypatch.delenv(TF32_ENV)
    with pytest.raises(ValueError, match="tf32"):
        Model(**TINY, tf32="yes")


def test_checkpoint_refusals(tmp_path):
    m = Model(**TINY, seed=0)
    good = tmp_path / "good.npz"
    m.save(good)
    data = good.read_bytes()
    cases = {}
    cases["truncated"] = data[: len(data) // 2]
    cases["empty"] = b""
    cases["text"] = b"not a checkpoint at all"
    for name, content in cases.items():
        (tmp_path / f"{name}.npz").write_bytes(content)
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    arrays = dict(np.load(good, allow_pickle=False))
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "param/out.b"})
    bad_shape = dict(arrays)
    bad_shape["param/out.W"] = np.zeros((2, 9), np.float32)
    np.savez(tmp_path / "shape.npz", **bad_shape)
    meta = json.loads(arrays["meta"].tobytes())
    meta["version"] = 99
    newer = dict(arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    np.savez(tmp_path / "newer.npz", **newer)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:
        z.write(tmp_path / "obj.npy", "meta.npy")
    for name in ["truncated", "empty", "text", "foreign", "missing", "shape", "newer", "pickled",
                 "does_not_exist"]:
        with pytest.raises(CheckpointError) as e:
            Model.load(tmp_path / f"{name}.npz", backend="numpy")
        assert f"{name}.npz" in str(e.value)


def _with_meta(arrays, path, **changes):
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(changes)
    np.savez(path, **dict(arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8)))


def test_damaged_checkpoints_are_refused_in_one_line_and_never_suggest_pickle(tmp_path):
    m = Model(**TINY, seed=0)
    good = tmp_path / "good.npz"
    m.save(good)
    arrays = dict(np.load(good, allow_pickle=False))
    paths = []
    np.save(tmp_path / "plain.npy", np.zeros(3))
    (tmp_path / "plain.npz").write_bytes((tmp_path / "plain.npy").read_bytes())  # .npy, not a zip
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "pickle.npz").write_bytes((tmp_path / "obj.npy").read_bytes())  # pickled, not a zip
    (tmp_path / "pkl.npz").write_bytes(b"\x80\x04\x95" + b"\0" * 20)  # a raw pickle stream
    paths += [tmp_path / "plain.npz", tmp_path / "pickle.npz", tmp_path / "pkl.npz"]
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "objparam.npz", "w") as z:
        for member in src.namelist():  # a good checkpoint with an object array as a parameter
            if member != "param/out.W.npy":
                z.writestr(member, src.read(member))
        z.write(tmp_path / "obj.npy", "param/out.W.npy")
    paths.append(tmp_path / "objparam.npz")
    np.savez(tmp_path / "meta_float.npz", **dict(arrays, meta=arrays["meta"].astype(np.float64)))
    np.savez(tmp_path / "meta_2d.npz", **dict(arrays, meta=arrays["meta"][None]))
    paths += [tmp_path / "meta_float.npz", tmp_path / "meta_2d.npz"]
    for name, step in [("null", None), ("negative", -3), ("fraction", 2.5), ("bool", True),
                       ("huge", 1e30), ("hugeint", 10**30), ("text", "7")]:
        _with_meta(arrays, tmp_path / f"step_{name}.npz", step=step)
        paths.append(tmp_path / f"step_{name}.npz")
    _with_meta(arrays, tmp_path / "config_list.npz", config=[1, 2])
    paths.append(tmp_path / "config_list.npz")
    (tmp_path / "folder.npz").mkdir()
    paths.append(tmp_path / "folder.npz")
    for path in paths:
        with pytest.raises(CheckpointError) as e:
            Model.load(path, backend="numpy")
        text = str(e.value)
        assert path.name in text and "\n" not in text
        assert "allow_pickle" not in text and "pickle=" not in text


def _with_member_header(good, path, member, shape, payload=b"\0" * 16, compress=zipfile.ZIP_STORED):
    """A copy of checkpoint good whose member's .npy header claims shape, followed by payload."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", compress) as z:
        for name in src.namelist():
            z.writestr(name, header.getvalue() + payload if name == member else src.read(name))


def test_a_member_claiming_a_huge_shape_is_refused_in_one_line_without_allocating(tmp_path):
    good = tmp_path / "good.npz"
    Model(**TINY, seed=0).save(good)
    cases = {"huge.npz": ((10**12,), b"\0" * 16, zipfile.ZIP_STORED),
             "huge_deflated.npz": ((10**6, 10**6), b"\0" * 4096, zipfile.ZIP_DEFLATED),
             "short.npz": ((5, 4), b"\0" * 8, zipfile.ZIP_STORED)}  # fewer bytes than its shape
    for name, (shape, payload, compress) in cases.items():
        _with_member_header(good, tmp_path / name, "param/out.W.npy", shape, payload, compress)
        with pytest.raises(CheckpointError, match=r"member 'param/out\.W' claims shape") as e:
            Model.load(tmp_path / name, backend="numpy")
        assert "\n" not in str(e.value) and name in str(e.value)
    Model.load(good, backend="numpy")  # the good one still loads


def test_checkpoint_refuses_a_fifo_without_blocking(tmp_path):
    import os
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="not a regular file"):
        Model.load(fifo, backend="numpy")


def test_checkpoints_follow_the_umask(tmp_path):
    import os
    m = Model(**TINY, seed=0)
    for mask in (0o022, 0o077, 0o002):
        old = os.umask(mask)
        try:
            m.save(tmp_path / f"m{mask:o}.npz")
        finally:
            os.umask(old)
        assert (tmp_path / f"m{mask:o}.npz").stat().st_mode & 0o777 == 0o666 & ~mask
    assert Model.load(tmp_path / "m22.npz", backend="numpy").step == 0


@pytest.mark.slow
def test_training_on_shipped_pieces_lowers_the_loss():
    pieces = load_pieces(shipped_corpus_dir())
    few = {k: pieces[k] for k in sorted(pieces)[:4]}
    m = Model((24, 24), (16, 8), dropout=0.0, backend="numpy", seed=0)
    rng = np.random.default_rng(0)
    losses = [m.train_step(sample_batch(few, 4, 32, rng)) for _ in range(30)]
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.6 * first, (first, last)


def test_both_backends_have_the_same_interface():
    """NumpyBackend and CudaBackend: the methods backends/__init__.py lists, same signatures."""
    import inspect

    from biaxial_cu.backends.cuda import CudaBackend
    from biaxial_cu.backends.numpy_backend import NumpyBackend

    methods = ("loss", "activations", "gradients", "train_step", "adadelta", "dropout_masks", "compose",
               "parameters_finite")
    for name in methods:
        assert inspect.signature(getattr(NumpyBackend, name)) == inspect.signature(getattr(CudaBackend, name)), name
    assert NumpyBackend.name == "numpy" and CudaBackend.name == "cuda"


def test_a_replaced_parameter_is_trained_and_checked():
    """model.params[name] = array: the optimiser and the finiteness check still see it."""
    model = Model(**TINY, seed=0, dropout=0.0)
    model.params["out.b"] = np.array([0.5, -0.5], np.float32)
    model.train_step(random_batch(1))
    assert model.params["out.b"][0] != 0.5  # it moved
    model.params["out.W"] = np.full((2, 2), np.nan, np.float32)
    assert not model.parameters_finite()
    model.params["out.W"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match="out.W"):
        model.train_step(random_batch(1))


def test_a_config_claiming_huge_layers_is_refused_before_allocating(tmp_path):
    """The arrays are checked against the config before the model is made: a config edited to
    claim 100000-unit layers (320 GB of parameters) is a CheckpointError at once."""
    Model(**TINY, seed=0).save(tmp_path / "c.npz")
    arrays = dict(np.load(tmp_path / "c.npz"))
    meta = json.loads(arrays["meta"].tobytes())
    meta["config"]["t_layer_sizes"] = [100000, 100000]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "huge.npz", **arrays)
    with pytest.raises(CheckpointError, match="the config needs"):
        Model.load(tmp_path / "huge.npz", backend="numpy")
