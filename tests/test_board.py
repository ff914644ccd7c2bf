"""TensorBoard logs (biaxial_cu.board) read back with TensorBoard's own reader: scalars at their
steps, piano-roll images, audio, histograms, gradient norms, and a resumed run's curves.

Needs the `tensorboard` extra (in `test`); without it these skip with the reason, except under
CI (CI set), where they fail.
"""
import io
import os
import wave

import numpy as np
import pytest

from biaxial_cu import board, viz
from biaxial_cu.backends.reference import segment_sq_norms
from biaxial_cu.common import CLIP_NORM
from biaxial_cu.params import flat_size, flat_views, param_shapes, segment_offsets
from conftest import needs


def _missing():
    for module in ("tensorboardX", "tensorboard", "soundfile"):
        try:
            __import__(module)
        except (ImportError, OSError) as e:
            return f"{module} is not installed ({e}): pip install 'biaxial_cu[tensorboard]'"
    return None


MISSING = _missing()


@pytest.fixture(autouse=True)
def extra_installed():
    needs(MISSING)  # CI installs the [test] extra


def read_back(logdir):
    """TensorBoard's EventAccumulator over logdir, keeping every event of every kind."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    everything = {"scalars": 0, "images": 0, "audio": 0, "histograms": 0, "compressedHistograms": 0,
                  "tensors": 0}
    log = EventAccumulator(str(logdir), size_guidance=everything)
    log.Reload()
    return log


def scalars(log, tag):
    return [(e.step, pytest.approx(e.value, rel=1e-6)) for e in log.Scalars(tag)]


def a_piece(T=40):
    S = np.zeros((T, 78, 2), np.uint8)
    S[::4, 30:33] = 1  # struck chords every 4 steps, each one step long
    S[:, 70, 0] = 1  # a high note held throughout (struck never)
    return S


def a_wav(path, seconds=0.5, rate=8000):
    t = np.arange(int(seconds * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    viz.write_wav(path, np.stack([left, 0.5 * left], axis=1), rate)
    return path


def test_every_kind_is_read_back_at_its_step(tmp_path):
    wav = a_wav(tmp_path / "s.wav")
    params = {"time.0.W": np.linspace(-1, 1, 120, dtype=np.float32).reshape(12, 10), "out.b": np.ones(2)}
    with board.RunBoard(tmp_path / "tb", resume_step=0) as log:
        log.scalars(10, 0.5, 0.6, 0.25, 1000.0)
        log.scalars(20, 0.4, None, 0.2, 1200.0)  # a row without validation
        log.sample(20, a_piece(), wav)
        log.gradients(20, {"time.0.W": 7.5, "out.b": 0.1}, 3)
        log.histograms(20, params)
    got = read_back(tmp_path / "tb")
    assert scalars(got, "loss/train") == [(10, 0.5), (20, 0.4)]
    assert scalars(got, "loss/validation") == [(10, 0.6)]
    assert scalars(got, "speed/seconds_per_batch") == [(10, 0.25), (20, 0.2)]
    assert scalars(got, "speed/note_steps_per_second") == [(10, 1000.0), (20, 1200.0)]
    assert scalars(got, "gradient_norm/time.0.W") == [(20, 7.5)]
    assert scalars(got, "gradient_norm/clipped_segments") == [(20, 3)]

    [image] = got.Images("sample/piano_roll")
    pixels = viz.piano_roll_pixels(a_piece())
    assert (image.step, image.height, image.width) == (20, *pixels.shape)
    from PIL import Image  # TensorBoard's own dependency

    decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("L"))
    np.testing.assert_array_equal(decoded, pixels)

    [audio] = got.Audio("sample/audio")
    assert (audio.step, audio.sample_rate, audio.length_frames) == (20, 8000, 4000)
    with wave.open(io.BytesIO(audio.encoded_audio_string)) as w:
        assert w.getnchannels() == 1
        mono = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
    samples, _ = viz.read_wav(wav)
    np.testing.assert_allclose(mono, samples.mean(axis=1), atol=2 / 32768)

    [histogram] = got.Histograms("parameters/time.0.W")
    assert histogram.step == 20
    h = histogram.histogram_value
    assert (h.num, h.min, h.max) == (120, -1.0, 1.0)
    assert h.sum == pytest.approx(0, abs=1e-4)
    assert got.Histograms("parameters/out.b")[0].histogram_value.num == 2


def test_a_resumed_run_continues_the_curves_without_duplicate_steps(tmp_path):
    """Steps 1..4 written, the run resumed from its checkpoint at step 2 writes 3..6: each step
    once, the resumed run's values from 3 on, and what the first run logged after step 2 (here a
    sample at step 4) gone, in every kind."""
    logdir = tmp_path / "tb"
    with board.RunBoard(logdir, resume_step=0) as log:
        for step in range(1, 5):
            log.scalars(step, 1.0 * step, 2.0 * step, 0.1, 100.0)
        log.sample(2, a_piece())
        log.sample(4, a_piece())
        log.histograms(4, {"out.b": np.ones(2)})
    with board.RunBoard(logdir, resume_step=2) as log:
        for step in range(3, 7):
            log.scalars(step, 10.0 * step, 20.0 * step, 0.1, 100.0)
        log.sample(6, a_piece())
    assert len(list(logdir.iterdir())) == 2  # one event file per writer, none overwritten
    got = read_back(logdir)
    assert scalars(got, "loss/train") == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0), (5, 50.0), (6, 60.0)]
    assert scalars(got, "loss/validation") == [(1, 2.0), (2, 4.0), (3, 60.0), (4, 80.0), (5, 100.0),
                                               (6, 120.0)]
    assert [e.step for e in got.Images("sample/piano_roll")] == [2, 6]
    assert got.Histograms("parameters/out.b") == []

    with board.RunBoard(logdir, resume_step=6) as log:  # resumed again, right away
        log.scalars(7, 70.0, None, 0.1, 100.0)
    assert scalars(read_back(logdir), "loss/train")[-2:] == [(6, 60.0), (7, 70.0)]


def test_a_writer_that_only_adds_purges_nothing(tmp_path):
    """resume_step=None (evaluate into a run's log): earlier events at any step stay."""
    with board.RunBoard(tmp_path, resume_step=0) as log:
        log.scalars(5, 1.0, None, 0.1, 100.0)
    with board.RunBoard(tmp_path) as log:
        log.scalar(2, "evaluate/loss/model", 0.3)
    got = read_back(tmp_path)
    assert scalars(got, "loss/train") == [(5, 1.0)]
    assert scalars(got, "evaluate/loss/model") == [(2, 0.3)]


def test_gradient_norms_per_tensor_and_clipped_segments():
    """From the optimiser's per-segment squared norms: each tensor's whole norm, and how many
    segments (gate blocks, MODEL_SPEC 5) were over the clipping norm."""
    shapes = param_shapes((5, 4), (3,))
    offsets = segment_offsets(shapes)
    rng = np.random.default_rng(0)
    flat = rng.standard_normal(flat_size(shapes)) * 0.01
    over = [1, 4, len(offsets) - 2]  # segments made larger than the clipping norm
    for k in over:
        flat[offsets[k]:offsets[k + 1]] *= 4 * CLIP_NORM / np.linalg.norm(flat[offsets[k]:offsets[k + 1]])
    norms, clipped = board.gradient_norms(segment_sq_norms(flat, offsets), shapes)
    views = flat_views(flat, shapes)
    assert list(norms) == list(shapes)
    for name in shapes:
        assert norms[name] == pytest.approx(np.linalg.norm(views[name]), rel=1e-12)
    assert clipped == len(over)
    with pytest.raises(ValueError, match="segments"):
        board.gradient_norms(np.ones(3), shapes)


def test_piano_roll_pixels_grey_sounding_black_struck_pitch_upwards():
    S = np.zeros((10, 78, 2), np.uint8)
    S[2, 0] = 1  # the lowest note struck at step 2
    S[3:5, 77, 0] = 1  # the highest note sounding, not struck, at steps 3 and 4
    pixels = viz.piano_roll_pixels(S)
    cell = viz.NOTE_PIXELS
    assert pixels.shape == (78 * cell, 10 * viz.PIXELS_PER_STEP) and pixels.dtype == np.uint8
    per_step = viz.PIXELS_PER_STEP
    assert pixels[-1, 2 * per_step] == 0  # struck: black, at the bottom
    assert pixels[0, 3 * per_step] == pixels[0, 5 * per_step - 1] == 140  # sounding: grey, at the top
    assert (pixels == 255).sum() == pixels.size - 3 * cell * per_step  # the rest white
    assert viz.piano_roll_pixels(np.zeros((3000, 78, 2))).shape[1] == 3000  # 1 pixel a step


def test_without_the_extra_a_board_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(board.importlib.util, "find_spec", lambda name: None)
    assert not board.available()
    with pytest.raises(RuntimeError, match=r"pip install 'biaxial_cu\[tensorboard\]'"):
        board.RunBoard("unused")


@pytest.mark.slow
def test_a_training_run_and_its_resume_log_every_kind(music, tmp_path):
    """python -m biaxial_cu.train --tensorboard, stopped by Ctrl-C after batch 3 and resumed to 6:
    losses and speeds at every log row, a piano roll, gradient norms and histograms at every
    sample, each step once with the resumed run's values; --force moves the log aside."""
    import json

    from biaxial_cu import train

    out = tmp_path / "run"
    args = [music, "--out", out, "--t-layers", "8", "--p-layers", "4", "--batch-size", "2", "--seq-len", "16",
            "--backend", "numpy", "--no-progress", "--tensorboard", "--log-every", "2", "--sample-every", "2",
            "--early-until", "0", "--sample-steps", "8"]
    os.environ["BIAXIAL_CU_INTERRUPT_AT"] = "3"
    try:
        assert train.main([str(a) for a in args] + ["--batches", "6"]) == 130
    finally:
        del os.environ["BIAXIAL_CU_INTERRUPT_AT"]
    assert train.main(["--resume", str(out), "--no-progress"]) == 0
    log = read_back(out / "tensorboard")
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["batch"] for r in rows] == [2, 4, 6]
    assert scalars(log, "loss/train") == [(r["batch"], pytest.approx(r["train_loss"], rel=1e-6)) for r in rows]
    assert scalars(log, "loss/validation") == [(r["batch"], pytest.approx(r["val_loss"], rel=1e-6)) for r in rows]
    assert [e.step for e in log.Scalars("speed/note_steps_per_second")] == [2, 4, 6]
    assert all(e.value > 0 for e in log.Scalars("speed/seconds_per_batch"))
    assert [e.step for e in log.Images("sample/piano_roll")] == [2, 4, 6]  # not batch 3's Ctrl-C checkpoint
    assert [e.step for e in log.Scalars("gradient_norm/time.0.W")] == [2, 4, 6]
    assert all(e.value > 0 for e in log.Scalars("gradient_norm/out.W"))
    assert [e.step for e in log.Histograms("parameters/pitch.0.W")] == [2, 4, 6]
    assert train.main([str(a) for a in args] + ["--batches", "2", "--force"]) == 0
    assert (out / "previous-1" / "tensorboard").is_dir()
    assert [e.step for e in read_back(out / "tensorboard").Scalars("loss/train")] == [2]


@pytest.mark.slow
def test_a_failing_synthesizer_costs_the_audio_not_the_run(music, tmp_path, monkeypatch, capsys):
    """fluidsynth that fails (exit 1): each sample's audio is left out with a one-line warning,
    the piano roll is still logged and the run ends normally."""
    from biaxial_cu import train

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fluidsynth").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "fluidsynth").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(viz, "find_soundfont", lambda: str(bin_dir / "fluidsynth"))  # any existing file
    out = tmp_path / "run"
    assert train.main([str(music), "--out", str(out), "--t-layers", "8", "--p-layers", "4", "--batch-size", "2",
                       "--seq-len", "16", "--backend", "numpy", "--no-progress", "--tensorboard", "--batches", "2",
                       "--sample-every", "2", "--early-until", "0", "--sample-steps", "8"]) == 0
    assert "warning: no audio for the sample of batch 2: fluidsynth failed (exit 1)" in capsys.readouterr().err
    log = read_back(out / "tensorboard")
    assert [e.step for e in log.Images("sample/piano_roll")] == [2] and "sample/audio" not in log.Tags()["audio"]
