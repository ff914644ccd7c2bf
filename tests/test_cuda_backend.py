"""GPU checks of the cuda backend (`python -m pytest -m gpu`); skipped with the reason elsewhere.

Tolerance: the float32 forward of the original configuration differs from the float64
reference by rounding in 127 recurrent steps and a sum of ~10^5 loss terms. The float32 NumPy
reference lands 2.5e-8 relative from float64 on a shipped-corpus batch (seed 0, measured on
the CPU); the kernels sum dot products in another order and flush denormals, so we allow
1e-5 relative: 400 times that, still far below any real error (a wrong gate or mask moves
the loss by percents).
"""
import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.backends import reference as ref
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def real_batch():
    pieces = load_pieces(shipped_corpus_dir())
    return sample_batch(pieces, 10, 128, np.random.default_rng(0))


def copy_params(src, dst):
    for name, value in src.params.items():
        dst.params[name][...] = _to(dst, value)


def _to(model, value):
    value = value.get() if hasattr(value, "get") else value
    if model.backend == "cuda":
        import cupy

        return cupy.asarray(value, dtype=cupy.float32)
    return value.astype(model.dtype)


@pytest.mark.parametrize("act", ["identity", "tanh"])
def test_loss_matches_numpy_on_the_original_configuration(real_batch, act):
    gpu = Model(cell_activation=act, backend="cuda", seed=0)
    cpu = Model(cell_activation=act, backend="numpy", dtype="float64", seed=0)
    copy_params(gpu, cpu)
    assert gpu.loss(real_batch) == pytest.approx(cpu.loss(real_batch), rel=1e-5)


def test_lstm_step_forward_at_time_stack_size():
    import cupy

    from biaxial_cu.backends import cuda

    rng = np.random.default_rng(0)
    R, H = 780, 300
    xproj = rng.standard_normal((2, R, 4 * H)).astype(np.float32)
    h_prev = rng.standard_normal((R, H)).astype(np.float32)
    c_prev = rng.standard_normal((R, H)).astype(np.float32)
    W_h = (rng.standard_normal((4 * H, H)) / H).astype(np.float32)
    gates = cupy.asarray(xproj)  # (2, R, 4H); step 1 reads slot 0 of h and c
    h = cupy.asarray(np.stack([h_prev, h_prev]))
    c = cupy.asarray(np.stack([c_prev, c_prev]))
    unused = cupy.zeros(1, cupy.float32)
    cuda.kernel("lstm", "lstm_step_forward")(
        *cuda.lstm_forward_launch(R, H),
        (gates, h, c, cupy.asarray(W_h), unused, unused, np.int32(R), np.int32(H), np.int32(0), np.int32(0),
         np.int32(1)))
    want_h, want_c, want_g = ref.lstm_step_forward(xproj[1].astype(np.float64), h_prev.astype(np.float64),
                                                   c_prev.astype(np.float64), W_h.astype(np.float64), "identity")
    np.testing.assert_allclose(h[1].get(), want_h, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(c[1].get(), want_c, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(gates[1].get(), want_g, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("meters", ["original", "all"])
def test_gradients_match_numpy_on_the_original_configuration(real_batch, meters):
    """Every parameter's gradient, same dropout masks, against the float64 reference; with the
    original's positions and with 12-step bars (3/4) from bar position 5 (meters "all").

    Gradients sum ~10^5 terms per entry in float32 against float64: compared entrywise with
    atol 1e-4 of the tensor's largest entry and rtol 1e-3 (a wrong term moves whole rows).
    """
    B, T = real_batch.shape[:2]
    positions = None if meters == "original" else np.tile((5 + np.arange(T)) % 12, (B, 1)).astype(np.int32)
    gpu = Model(backend="cuda", seed=0, meters=meters)
    cpu = Model(backend="numpy", dtype="float64", seed=0, meters=meters)
    copy_params(gpu, cpu)
    masks = cpu.dropout_masks(*real_batch.shape[:2])
    loss_gpu, grads_gpu = gpu.gradients(real_batch, masks, positions)
    loss_cpu, grads_cpu = cpu.gradients(real_batch, masks, positions)
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-5)
    for name, want in grads_cpu.items():
        got = grads_gpu[name].get()
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max(), err_msg=name)


def test_training_tracks_numpy_for_50_steps():
    """Same start, same batches, same masks: the loss curves agree step by step.

    A mid-size model keeps the NumPy side to about a minute; float32 drift over 50 Adadelta
    steps stays well below 1e-3 relative in the loss.
    """
    pieces = load_pieces(shipped_corpus_dir())
    kw = dict(t_layer_sizes=(64, 64), p_layer_sizes=(32, 16), seed=1)
    gpu, cpu = Model(backend="cuda", **kw), Model(backend="numpy", **kw)
    rng = np.random.default_rng(0)
    for step in range(50):
        batch = sample_batch(pieces, 4, 64, rng)
        masks = cpu.dropout_masks(4, 64)
        l_gpu, l_cpu = gpu.train_step(batch, masks), cpu.train_step(batch, masks)
        assert l_gpu == pytest.approx(l_cpu, rel=1e-3), step


def test_gpu_training_is_reproducible_and_resumes(tmp_path, real_batch):
    a = Model((32,), (16,), backend="cuda", seed=3)
    b = Model((32,), (16,), backend="cuda", seed=3)
    la = [a.train_step(real_batch[:2, :32]) for _ in range(3)]
    lb = [b.train_step(real_batch[:2, :32]) for _ in range(3)]
    assert la == lb
    a.save(tmp_path / "c.npz")
    c = Model.load(tmp_path / "c.npz", backend="cuda")
    assert a.train_step(real_batch[:2, :32]) == c.train_step(real_batch[:2, :32])


TIE = 1e-6  # a uniform this close to its threshold may be decided either way on a GPU


@pytest.mark.parametrize("meter", [None, "9/8"])
def test_device_compose_matches_numpy_compose(meter):
    """Same seeds (steps of shipped chorales, not silence), same uniforms, same pieces; with the
    original's positions and in 9/8 (18-step bars, longer than the beat inputs' 16: they wrap).

    kernels/sample.cu evaluates the sampling rule in double exactly as the CPU does; only the
    device's expf/tanhf (an ulp or two from glibc's) move a probability, by ~1e-7 (its module
    docstring), which can flip a choice only where the uniform lies that close to its threshold.
    So each piece must equal the CPU's exactly up to the first step at which the CPU trace has a
    deciding uniform within TIE = 1e-6 (10x that) of its threshold, and in full where there is
    none (the usual case: ~0.1 such uniforms a piece). In that step the first difference must
    be at such a uniform; after it the pieces may part."""
    from biaxial_cu.generate import compose, compose_trace, seed_from_pieces

    meters = "original" if meter is None else "all"
    gpu = Model(backend="cuda", seed=0, meters=meters)
    cpu = Model(backend="numpy", seed=0, meters=meters)
    copy_params(gpu, cpu)
    rng = np.random.default_rng(0)
    pieces = load_pieces(shipped_corpus_dir())
    seeds = np.stack([seed_from_pieces(pieces, rng) for _ in range(4)])  # (4, 78, 2)
    assert seeds[:, :, 0].any(axis=1).all()  # every seed has notes playing
    steps = 256
    uniforms = rng.random((4, steps, 78, 2))
    got = compose(gpu, seeds, steps, uniforms=uniforms, meter=meter)
    trace = compose_trace(cpu, seeds, steps, uniforms=uniforms, meter=meter)
    want = trace.states
    assert got.shape == want.shape == (4, steps + 1, 78, 2)
    p = trace.probabilities.astype(np.float64)  # (4, steps, 78, 2)
    with np.errstate(divide="ignore"):  # 0 ** negative conservativity = inf, as on both paths
        thresholds = np.stack([p[..., 0] ** trace.conservativity[:, :-1, None], p[..., 1]], axis=-1)
    # play's uniform always decides; articulate's only where the note plays
    deciding = np.stack([np.ones_like(want[:, 1:, :, 0], bool), want[:, 1:, :, 0] == 1], axis=-1)
    near = deciding & (np.abs(uniforms - thresholds) < TIE)  # (4, steps, 78, 2)
    for k in range(4):
        tie_steps = np.flatnonzero(near[k].any(axis=(1, 2)))
        if len(tie_steps) == 0:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"piece {k} (no uniform within {TIE})")
            continue
        t = tie_steps[0]  # uniforms[:, t] decide row t + 1
        np.testing.assert_array_equal(got[k, :t + 1], want[k, :t + 1], err_msg=f"piece {k} before step {t}")
        differ = np.argwhere(got[k, t + 1] != want[k, t + 1])  # (n, q) in the sweep's order
        if len(differ):
            n, q = differ[0]
            assert near[k, t, n, q], (k, t, n, q, abs(uniforms[k, t, n, q] - thresholds[k, t, n, q]))


def test_batch_composition_equals_each_seed_alone():
    """Piece k of a K-piece composition on the device equals seed k composed alone with its
    uniforms (API.md), bit for bit. Every per-piece computation of the device generator is
    row-independent except the time stack's cuBLAS GEMMs over K * 78 rows, whose algorithm
    cuBLAS may choose by row count: if this fails, the message gives the first step that
    differs and how far the probabilities had moved before it."""
    from biaxial_cu.generate import compose_trace

    gpu = Model(backend="cuda", seed=0)
    rng = np.random.default_rng(21)
    K, steps = 8, 128
    seeds = (rng.random((K, 78, 2)) < 0.1).astype(np.uint8)
    seeds[..., 1] *= seeds[..., 0]
    uniforms = rng.random((K, steps, 78, 2))
    batch = compose_trace(gpu, seeds, steps, uniforms=uniforms)
    assert batch.states[:, 1:, :, 0].any()  # something plays
    for k in range(K):
        alone = compose_trace(gpu, seeds[k:k + 1], steps, uniforms=uniforms[k:k + 1])
        differ = np.flatnonzero((batch.states[k] != alone.states[0]).any(axis=(1, 2)))
        dP = np.abs(batch.probabilities[k] - alone.probabilities[0]).max(axis=(1, 2))  # (steps,)
        assert not len(differ), (f"piece {k} differs from step {differ[0]}; max |dP| before it "
                                 f"{dP[:differ[0]].max(initial=0)}")
        np.testing.assert_array_equal(batch.probabilities[k], alone.probabilities[0], err_msg=f"piece {k}")
        np.testing.assert_array_equal(batch.conservativity[k], alone.conservativity[0], err_msg=f"piece {k}")


@pytest.mark.parametrize("tf32", [False, True], ids=["fp32", "tf32"])
def test_small_model_runs_every_kernel(real_batch, tf32, monkeypatch):
    """Every kernel once on small shapes, against the float64 reference: what compute-sanitizer
    runs (bench/gpu_session.sh), fast enough under memcheck. Two layers per stack, dropout,
    one Adadelta step, then a short composition on the device; once in fp32 and once with
    tf32=True (TF32 step kernels and GEMMs: operands keep 11 significant bits, so the
    bounds widen about 100-fold; test_cuda_glue_emu's TF32 test measured 2e-6 on the loss and
    2e-4 on gradients for smaller layers)."""
    from biaxial_cu.generate import compose

    monkeypatch.delenv("BIAXIAL_CU_TF32", raising=False)
    kw = dict(t_layer_sizes=(40, 24), p_layer_sizes=(20, 12), cell_activation="tanh", seed=5)
    gpu, cpu = Model(backend="cuda", tf32=tf32, **kw), Model(backend="numpy", dtype="float64", **kw)
    assert gpu.engine.tf32 == tf32
    loss_rel, grad_rtol, grad_atol, param_atol = (1e-3, 2e-2, 2e-3, 1e-4) if tf32 else (1e-5, 1e-3, 1e-4, 1e-5)
    copy_params(gpu, cpu)
    batch = real_batch[:2, :24]  # (2, 24, 78, 2)
    masks = cpu.dropout_masks(*batch.shape[:2])
    loss_gpu, grads_gpu = gpu.gradients(batch, masks)
    loss_cpu, grads_cpu = cpu.gradients(batch, masks)
    assert loss_gpu == pytest.approx(loss_cpu, rel=loss_rel)
    for name, want in grads_cpu.items():
        np.testing.assert_allclose(grads_gpu[name].get(), want, rtol=grad_rtol, atol=grad_atol * np.abs(want).max(),
                                   err_msg=name)
    assert gpu.train_step(batch, masks) == pytest.approx(cpu.train_step(batch, masks), rel=loss_rel)
    for name, want in cpu.params.items():  # a first Adadelta step moves an entry by at most
        # sqrt(1e-6 / 0.05) = 4.5e-3; atol 1e-5 is 0.2% of that (TF32: 2%)
        np.testing.assert_allclose(gpu.params[name].get(), want, rtol=1e-4, atol=param_atol, err_msg=name)
    assert compose(gpu, np.zeros((2, 78, 2), np.uint8), 8, rng=0).shape == (2, 9, 78, 2)


def test_original_configuration_trains_in_2_5_gb(real_batch):
    """The original configuration's memory bound (2.5 GB): the CuPy pool's size after a training step is its high-water mark
    (the pool keeps freed blocks), i.e. everything the step ever held at once."""
    import cupy

    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    model = Model(backend="cuda", seed=0)
    model.train_step(real_batch)
    cupy.cuda.Device().synchronize()
    assert pool.total_bytes() <= 2.5e9, pool.total_bytes()


# The TF32 tests last (bench/gpu_session.sh also runs them in a process of their own): a fault in
# the newer tensor-core kernels must not cost the fp32 checks their results.
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_tf32_step_kernels_at_time_stack_size(direction):
    """The tensor-core step kernels on the GPU against the fp32 twins on TF32-rounded operands
    (float64): the hardware multiplies TF32 values exactly and accumulates in fp32, so what is
    left is fp32 summation over K = 300 (forward) or 1200 (backward) terms: atol 1e-4."""
    import cupy

    from biaxial_cu.backends import cuda

    rng = np.random.default_rng(1)
    R, H = 780, 300
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    gates_np = rng.random((2, R, 4 * H)).astype(np.float32)  # activated gates in (0, 1)
    c_np = rng.standard_normal((2, R, H)).astype(np.float32)
    W_h = (rng.standard_normal((4 * H, H)) / H).astype(np.float32)
    unused = cupy.zeros(1, cupy.float32)
    if direction == "forward":
        xproj = rng.standard_normal((2, R, 4 * H)).astype(np.float32)
        h_np = rng.standard_normal((2, R, H)).astype(np.float32)
        gates, h, c = cupy.asarray(xproj), cupy.asarray(h_np), cupy.asarray(c_np)
        cuda.kernel("lstm", "lstm_step_forward_tf32")(
            *cuda.lstm_forward_launch(R, H, tf32=True),
            (gates, h, c, cupy.asarray(W_h), unused, unused, np.int32(R), np.int32(H), np.int32(0), np.int32(0),
             np.int32(1)))
        want_h, want_c, want_g = ref.lstm_step_forward(f64(xproj[1]), f64(ref.round_tf32(h_np[0])), f64(c_np[0]),
                                                       f64(ref.round_tf32(W_h)), "identity")
        for got, want in ((h[1], want_h), (c[1], want_c), (gates[1], want_g)):
            np.testing.assert_allclose(got.get(), want, atol=1e-4, rtol=1e-4)
        return
    dpre1 = (rng.standard_normal((R, 4 * H)) / 10).astype(np.float32)
    gates_np[1] = dpre1
    dh_np, dc_np = rng.standard_normal((2, R, H)).astype(np.float32), rng.standard_normal((R, H)).astype(np.float32)
    gates, dc_prev = cupy.asarray(gates_np), cupy.empty((R, H), cupy.float32)
    cuda.kernel("lstm", "lstm_step_backward_tf32")(
        *cuda.lstm_backward_launch(R, H, tf32=True),
        (cupy.asarray(dh_np), gates, cupy.asarray(W_h), cupy.asarray(c_np), unused, np.int32(R), np.int32(H),
         np.int32(0), np.int32(0), np.int32(2), cupy.asarray(dc_np), dc_prev, np.int32(0)))
    want, want_dc = ref.lstm_step_backward(f64(dh_np[0]), f64(ref.round_tf32(dpre1)), f64(dc_np), f64(gates_np[0]),
                                           f64(c_np[0]), np.zeros((R, H)), f64(ref.round_tf32(W_h)), "identity")
    np.testing.assert_allclose(gates[0].get(), want, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(dc_prev.get(), want_dc, atol=1e-4, rtol=1e-4)


def test_tf32_training_tracks_the_float64_reference(real_batch, monkeypatch):
    """tf32 on the original configuration, chosen by the environment's override: loss and gradients against float64.
    TF32 keeps 11 significant bits of each operand (~5e-4 relative per product), summed over
    127 + 78 steps; not yet calibrated on a GPU, so the bounds are generous: loss 2e-3 relative,
    each gradient tensor within 2e-2 of its norm (fp32 kernels: 1e-5 and ~1e-4)."""
    monkeypatch.setenv("BIAXIAL_CU_TF32", "1")
    gpu = Model(backend="cuda", seed=0)
    assert gpu.engine.tf32
    cpu = Model(backend="numpy", dtype="float64", seed=0)
    copy_params(gpu, cpu)
    masks = cpu.dropout_masks(*real_batch.shape[:2])
    loss_gpu, grads_gpu = gpu.gradients(real_batch, masks)
    loss_cpu, grads_cpu = cpu.gradients(real_batch, masks)
    errors = {name: float(np.linalg.norm(grads_gpu[name].get() - want) / np.linalg.norm(want))
              for name, want in grads_cpu.items()}
    print("loss", loss_gpu / loss_cpu - 1, "gradients", errors)  # pytest -rA shows the calibration
    assert loss_gpu == pytest.approx(loss_cpu, rel=2e-3)
    assert max(errors.values()) < 2e-2, errors
