"""WAV files through a real General MIDI synthesizer (fluidsynth + a soundfont, viz.render_wav).

The rendering tests skip with the reason where fluidsynth or the soundfont is missing, except
under CI (CI set, as .ci/run does after installing them with apt-get): there they fail, so the
audio check cannot pass by being skipped. The rules without a synthesizer run everywhere.
"""
import inspect
import warnings
import wave

import numpy as np
import pytest

from biaxial_cu import Model, generate, viz
from biaxial_cu.data import shipped_corpus_dir
from biaxial_cu.midi import read_state_matrix, write_state_matrix
from conftest import needs

RATE = viz.WAV_RATE
TEMPO_BPM = inspect.signature(write_state_matrix).parameters["tempo_bpm"].default
SECONDS_PER_STEP = 60 / (4 * TEMPO_BPM)  # a step is a sixteenth note


def synthesizer_missing():
    """None when fluidsynth and a General MIDI soundfont are here, else what is missing."""
    fluidsynth, soundfont = viz.synthesizer()
    missing = [what for what, ok in (("fluidsynth", fluidsynth), ("a General MIDI soundfont", soundfont)) if not ok]
    return f"no {' and '.join(missing)} ({viz.SYNTH_INSTALL})" if missing else None


@pytest.fixture
def synthesizer():
    needs(synthesizer_missing())  # CI renders real audio


def wav_of(path):
    """(samples (frames, channels) in [-1, 1), rate, sample width in bytes) of a WAV file."""
    with wave.open(str(path)) as w:
        width = w.getsampwidth()
    samples, rate = viz.read_wav(path)
    return samples, rate, width


@pytest.mark.slow
def test_generate_wav_is_loud_enough_and_as_long_as_the_piece(synthesizer, tmp_path, capsys):
    """The public path: generate --wav. Not silent, peak at WAV_PEAK_DBFS (within 0.1 dB),
    duration within 5% of steps x 60 / (4 x bpm)."""
    Model((8,), (6, 4), backend="numpy", seed=3).save(tmp_path / "m.npz")
    steps = 255
    code = generate.main([str(tmp_path / "m.npz"), "--out", str(tmp_path / "p.mid"), "--steps", str(steps),
                          "--silent-seed", "--no-png", "--wav", "--backend", "numpy"])
    assert code == 0, capsys.readouterr().err
    samples, rate, width = wav_of(tmp_path / "p.wav")
    assert (rate, width, samples.shape[1]) == (RATE, 2, 2)  # 16-bit stereo at 44.1 kHz
    assert viz.peak_dbfs(samples) == pytest.approx(viz.WAV_PEAK_DBFS, abs=0.1)
    rms_dbfs = 10 * np.log10(np.mean(samples ** 2))
    assert rms_dbfs > -40, f"RMS {rms_dbfs:.1f} dBFS: hardly audible"
    expected = (steps + 1) * SECONDS_PER_STEP  # the seed step and the composed ones
    assert len(samples) / rate == pytest.approx(expected, rel=0.05)


def test_a_real_piece_renders_from_its_first_step_to_its_last(synthesizer, tmp_path):
    """A chorale of the shipped corpus through render_wav: sound starts at once and lasts until
    the last note ends, fluidsynth's trailing silence cut."""
    piece = read_state_matrix(shipped_corpus_dir() / "bwv108.6.mid")[:129].copy()
    assert piece[0, :, 1].any()  # struck at step 0
    piece[-1] = 0  # the last step silent: every note ends at step 128, 16 s in
    write_state_matrix(piece, tmp_path / "c.mid")
    assert viz.render_wav(tmp_path / "c.mid", tmp_path / "c.wav") == tmp_path / "c.wav"
    samples, rate, _ = wav_of(tmp_path / "c.wav")
    assert viz.peak_dbfs(samples) == pytest.approx(viz.WAV_PEAK_DBFS, abs=0.1)
    level = np.abs(samples).max(axis=1)
    sounding = np.nonzero(level > 10 ** (-40 / 20))[0]  # frames within 40 dB of full scale
    assert sounding[0] / rate < 0.05
    notes_end = 128 * SECONDS_PER_STEP
    assert notes_end - 0.25 < sounding[-1] / rate < notes_end + 0.5  # the last notes' release
    assert notes_end <= len(samples) / rate < notes_end * 1.05


def test_a_silent_piece_renders_as_silence_of_its_length(synthesizer, tmp_path):
    write_state_matrix(np.zeros((41, 78, 2), np.uint8), tmp_path / "s.mid")
    viz.render_wav(tmp_path / "s.mid", tmp_path / "s.wav")
    samples, rate, _ = wav_of(tmp_path / "s.wav")
    assert not samples.any()  # digital silence: fluidsynth's noise floor is not scaled up
    assert len(samples) / rate == pytest.approx(40 * SECONDS_PER_STEP, abs=1 / rate)


# ----------------------------------------------------------------------------- without a synthesizer


def quiet_piece_with_a_tail(rate):
    """1 s of a quiet tone at -26 dBFS, a release falling 100 dB over 1 s, 1 s of near-silence
    at -160 dBFS (fluidsynth's noise floor is about -150): (frames, 2)."""
    t = np.arange(rate) / rate
    tone = 0.05 * np.sin(2 * np.pi * 220 * t)
    release = 0.05 * np.geomspace(1, 1e-5, rate)
    floor = np.full(rate, 1e-8)
    left = np.concatenate([tone, release, floor])
    return np.stack([left, -left], axis=1)


def write_pcm32(path, samples, rate):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(4)
        w.setframerate(rate)
        w.writeframes(np.round(samples * 2 ** 31).astype("<i4").tobytes())


@pytest.mark.parametrize("chunk", [None, 1000])  # None: one chunk; 1000: many, boundaries inside
def test_normalise_wav_sets_the_peak_and_cuts_the_silence(tmp_path, monkeypatch, chunk):
    if chunk:
        monkeypatch.setattr(viz, "CHUNK_FRAMES", chunk)
    rate = 8000
    write_pcm32(tmp_path / "raw.wav", quiet_piece_with_a_tail(rate), rate)  # as fluidsynth -O s32
    viz.normalise_wav(tmp_path / "raw.wav", tmp_path / "out.wav", keep_seconds=0.5)
    out, out_rate, width = wav_of(tmp_path / "out.wav")
    assert (out_rate, width, out.shape[1]) == (rate, 2, 2)
    assert viz.peak_dbfs(out) == pytest.approx(viz.WAV_PEAK_DBFS, abs=0.01)
    # cut where the release is 60 dB (TAIL_DB) below the peak: 0.6 of its second
    assert len(out) / rate == pytest.approx(1 + 60 / 100, abs=2 / rate)
    viz.normalise_wav(tmp_path / "raw.wav", tmp_path / "long.wav", keep_seconds=2.5)
    assert len(wav_of(tmp_path / "long.wav")[0]) == 2.5 * rate  # never shorter than the piece


def test_normalise_wav_leaves_silence_silent(tmp_path):
    viz.write_wav(tmp_path / "raw.wav", np.zeros((800, 2)), 8000)
    viz.normalise_wav(tmp_path / "raw.wav", tmp_path / "out.wav", keep_seconds=0.05)
    out, _, _ = wav_of(tmp_path / "out.wav")
    assert out.shape == (400, 2) and not out.any()


def test_wav_round_trip_in_16_bits(tmp_path):
    samples = np.stack([np.sin(np.arange(1000) / 10), np.zeros(1000)], axis=1) * 0.5
    viz.write_wav(tmp_path / "x.wav", samples, 22050)
    back, rate, width = wav_of(tmp_path / "x.wav")
    assert (rate, width) == (22050, 2)
    np.testing.assert_allclose(back, samples, atol=1 / 32768)


def test_no_synthesizer_is_said_once_with_how_to_install_one(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    monkeypatch.setattr(viz, "_said", set())
    write_state_matrix(np.zeros((3, 78, 2), np.uint8), tmp_path / "a.mid")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert viz.render_wav(tmp_path / "a.mid", tmp_path / "a.wav") is None
        assert viz.render_wav(tmp_path / "a.mid", tmp_path / "b.wav") is None
    assert len(caught) == 1
    said = str(caught[0].message)
    assert "apt-get install fluidsynth fluid-soundfont-gm" in said and "brew install fluid-synth" in said
    assert not (tmp_path / "a.wav").exists()
