"""Pictures and sound: piano-roll PNGs, the training curve, WAV through fluidsynth when present.

matplotlib (the `viz` extra) is imported on first use; without it every function says once that
PNGs need `pip install 'biaxial_cu[viz]'` and returns None, so training and generation go on.
Piano-roll size rule: PIXELS_PER_STEP pixels per step (at most MAX_WIDTH wide) by 4 pixels per
note (312 + margins), at 100 dpi.

WAV rule (render_wav): fluidsynth renders the MIDI file with a General MIDI soundfont into 32-bit
PCM; the result is scaled so that its peak sits at WAV_PEAK_DBFS (dB below 32768, the 16-bit full
scale) and written as 16-bit PCM, 44.1 kHz stereo. fluidsynth plays on for about 2 s of silence
after the last event; the WAV is cut where the sound has fallen TAIL_DB below its peak for good,
but never before the MIDI file ends, so it lasts as long as the piece (steps x 60 / (4 x bpm)
seconds) plus the audible end of the last notes' release.
"""
import json
import os
import shutil
import subprocess
import tempfile
import warnings
import wave
from pathlib import Path

import mido
import numpy as np

from .common import LOWEST_PITCH, N_NOTES, write_atomically

PIXELS_PER_STEP = 4
MAX_WIDTH = 4000
NOTE_PIXELS = 4
MARGIN = 60
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2")
WAV_RATE = 44100  # samples per second
WAV_PEAK_DBFS = -1.0  # every WAV's peak (fluidsynth alone puts velocity 64 at about -26 dBFS)
TAIL_DB = -60.0  # sound this far below the peak counts as silence when the tail is cut
SILENCE_DBFS = -120.0  # below this, silence (fluidsynth's own noise floor is about -150 dBFS)
FULL_SCALE = {2: 2 ** 15, 4: 2 ** 31}  # bytes per sample -> the PCM full scale (16 and 32-bit)
CHUNK_FRAMES = 1 << 20  # frames read at a time (24 s at 44.1 kHz, 16 MiB of float64 stereo)
SYNTH_INSTALL = ("get one with: apt-get install fluidsynth fluid-soundfont-gm (Debian/Ubuntu); "
                 "brew install fluid-synth and a General MIDI .sf2 in BIAXIAL_CU_SOUNDFONT (macOS); "
                 "fluidsynth's release from github.com/FluidSynth/fluidsynth on PATH and a .sf2 in "
                 "BIAXIAL_CU_SOUNDFONT (Windows)")
_said = set()


def _say_once(key, message):
    if key not in _said:
        _said.add(key)
        warnings.warn(message, stacklevel=3)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _say_once("mpl", "PNG files need matplotlib: pip install 'biaxial_cu[viz]'; skipping pictures")
        return None
    return plt


def piano_roll_size(T):
    """(width, height) in pixels of piano_roll_png for a piece of T steps."""
    return min(MAX_WIDTH, PIXELS_PER_STEP * T) + 2 * MARGIN, N_NOTES * NOTE_PIXELS + 2 * MARGIN


def piano_roll_png(S, path, title=None, bar_positions=None):
    """S (T, 78, 2) -> a PNG: sounding notes grey, struck notes dark; pitch upwards.
    bar_positions (T,): steps since the bar line (midi.bar_positions); a thin line is drawn at
    each bar line (each step whose position is 0)."""
    plt = _pyplot()
    if plt is None:
        return None
    S = np.asarray(S)
    T = S.shape[0]
    width, height = piano_roll_size(T)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes([MARGIN / width, MARGIN / height, 1 - 2 * MARGIN / width, 1 - 2 * MARGIN / height])
    image = S[:, :, 0].astype(float) * 0.45 + S[:, :, 1] * 0.55  # (T, 78)
    ax.imshow(image.T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1,
              interpolation="nearest", extent=(0, T, LOWEST_PITCH - 0.5, LOWEST_PITCH + N_NOTES - 0.5))
    if bar_positions is not None:
        for step in np.flatnonzero(np.asarray(bar_positions)[:T] == 0):
            ax.axvline(step, color="tab:blue", linewidth=0.6, alpha=0.6)
    ax.set_xlabel("step (sixteenth notes)" + (", bar lines in blue" if bar_positions is not None else ""))
    ax.set_ylabel("MIDI pitch")
    if title:
        ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def piano_roll_pixels(S):
    """S (T, 78, 2) -> the piano roll as a (78 x NOTE_PIXELS, width) uint8 grey image without
    matplotlib: white silence, grey sounding, black struck, pitch upwards (piano_roll_png's
    shades); PIXELS_PER_STEP pixels per step, fewer to stay within MAX_WIDTH, but at least 1."""
    S = np.asarray(S)
    shade = 1 - (S[:, :, 0].astype(float) * 0.45 + S[:, :, 1] * 0.55)  # (T, 78), 1 = white
    pixels = np.round(255 * np.clip(shade, 0, 1)).astype(np.uint8).T[::-1]  # (78, T), top = highest
    per_step = max(1, min(PIXELS_PER_STEP, MAX_WIDTH // max(1, S.shape[0])))
    return np.repeat(np.repeat(pixels, NOTE_PIXELS, axis=0), per_step, axis=1)


def training_curve_png(log_path, path):
    """The JSONL log's train and validation loss per note-step against the batch."""
    plt = _pyplot()
    if plt is None:
        return None
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    batches = [r["batch"] for r in rows]
    ax.plot(batches, [r["train_loss"] for r in rows], label="train")
    val = [(r["batch"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val), label="validation (no dropout)")
    ax.set_xlabel("batch")
    ax.set_ylabel("loss per note-step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def find_soundfont():
    env = os.environ.get("BIAXIAL_CU_SOUNDFONT")
    for candidate in ([env] if env else []) + list(SOUNDFONTS):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def synthesizer():
    """(fluidsynth's path, a General MIDI soundfont's path), either None where missing."""
    return shutil.which("fluidsynth"), find_soundfont()


def render_wav(midi_path, wav_path):
    """MIDI -> WAV (the module's WAV rule: peak at WAV_PEAK_DBFS, silence after the end cut) with
    fluidsynth and a General MIDI soundfont; None (said once, with how to install them) without.
    A failing fluidsynth raises subprocess.CalledProcessError, one whose output is no WAV file
    (a fluidsynth built without libsndfile writes raw samples) OSError; wav_path is then left as
    it was."""
    fluidsynth, soundfont = synthesizer()
    if not fluidsynth or not soundfont:
        _say_once("wav", f"no fluidsynth and General MIDI soundfont found, so no WAV files; {SYNTH_INSTALL}")
        return None
    seconds = mido.MidiFile(midi_path).length  # the piece's length, which the WAV keeps whole
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"  # 32-bit: quiet renders keep their detail until normalised
        subprocess.run([fluidsynth, "-ni", "-O", "s32", "-r", str(WAV_RATE), "-F", str(raw),
                        soundfont, str(midi_path)], check=True, capture_output=True)
        try:
            normalise_wav(raw, wav_path, keep_seconds=seconds)
        except (wave.Error, EOFError, ValueError) as e:
            raise OSError(f"fluidsynth wrote no PCM WAV file ({e}); is it built with libsndfile?") from None
    return Path(wav_path)


def normalise_wav(source, target, *, keep_seconds=0.0):
    """A 16 or 32-bit PCM WAV -> a 16-bit one by the WAV rule: peak at WAV_PEAK_DBFS (a source
    whose peak is below SILENCE_DBFS comes out as zeros, not as noise scaled up), and cut after
    its last frame within TAIL_DB of the peak, but never within its first keep_seconds. Chunk by
    chunk: an hours-long render never sits in memory whole."""
    with wave.open(str(source), "rb") as w:
        frames, rate, channels = w.getnframes(), w.getframerate(), w.getnchannels()
        peak = max((float(np.abs(chunk).max(initial=0.0)) for chunk in _chunks(w, 0, frames)), default=0.0)
        sound = peak >= 10 ** (SILENCE_DBFS / 20)
        keep = min(frames, round(keep_seconds * rate))
        end = _sound_end(w, keep, peak * 10 ** (TAIL_DB / 20)) if sound else keep
        gain = 10 ** (WAV_PEAK_DBFS / 20) / peak if sound else 0.0
        _write_pcm16(target, (chunk * gain for chunk in _chunks(w, 0, end)), rate, channels)


def _chunks(w, start, stop):
    """Frames [start, stop) of an open wave reader, CHUNK_FRAMES at a time, as float64 arrays
    (frames, channels) in [-1, 1)."""
    width, channels = w.getsampwidth(), w.getnchannels()
    if width not in FULL_SCALE:
        raise ValueError(f"{8 * width}-bit samples; expected 16 or 32-bit PCM")
    w.setpos(start)
    for begin in range(start, stop, CHUNK_FRAMES):
        data = np.frombuffer(w.readframes(min(CHUNK_FRAMES, stop - begin)), f"<i{width}")
        yield data.reshape(-1, channels) / FULL_SCALE[width]


def _sound_end(w, keep, threshold):
    """The frame after the last one at or above threshold (read backwards from the end, a chunk
    at a time: the tail to cut is short), at least keep."""
    stop = w.getnframes()
    while stop > keep:
        start = max(keep, stop - CHUNK_FRAMES)
        level = np.abs(next(_chunks(w, start, stop))).max(axis=1, initial=0.0)  # (frames,)
        loud = np.nonzero(level >= threshold)[0]
        if loud.size:
            return start + int(loud[-1]) + 1
        stop = start
    return keep


def _write_pcm16(path, chunks, rate, channels):
    """Chunks (frames, channels) in [-1, 1] -> one 16-bit PCM WAV, written atomically."""
    def write(f):
        with wave.open(f, "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            for chunk in chunks:
                pcm = np.clip(np.round(chunk * FULL_SCALE[2]), -FULL_SCALE[2], FULL_SCALE[2] - 1)
                w.writeframes(pcm.astype("<i2").tobytes())

    write_atomically(path, write)


def write_wav(path, samples, rate):
    """samples (frames, channels) in [-1, 1] -> a 16-bit PCM WAV, written atomically."""
    samples = np.asarray(samples, np.float64)
    _write_pcm16(path, [samples], rate, samples.shape[1])


def read_wav(path):
    """(samples (frames, channels) float64 in [-1, 1), sample rate) of a 16 or 32-bit PCM WAV,
    all of it (a sample's, say; render_wav reads its long renders chunk by chunk)."""
    with wave.open(str(path), "rb") as w:
        samples = np.concatenate([np.zeros((0, w.getnchannels())), *_chunks(w, 0, w.getnframes())])
        return samples, w.getframerate()


def peak_dbfs(samples):
    """The peak level of samples (in [-1, 1]) in dB below full scale; -inf when silent."""
    peak = float(np.max(np.abs(samples), initial=0.0))
    return 20 * np.log10(peak) if peak > 0 else -np.inf
