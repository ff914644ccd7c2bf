"""Pictures and sound: piano-roll PNGs, the training curve, WAV through fluidsynth when present.

matplotlib (the `viz` extra) is imported on first use; without it every function says once that
PNGs need `pip install 'biaxial_cu[viz]'` and returns None, so training and generation go on.
Piano-roll size rule: PIXELS_PER_STEP pixels per step (at most MAX_WIDTH wide) by 4 pixels per
note (312 + margins), at 100 dpi.
"""
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

from .common import LOWEST_PITCH, N_NOTES

PIXELS_PER_STEP = 4
MAX_WIDTH = 4000
NOTE_PIXELS = 4
MARGIN = 60
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2")
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


def piano_roll_png(S, path, title=None):
    """S (T, 78, 2) -> a PNG: sounding notes grey, struck notes dark; pitch upwards."""
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
    ax.set_xlabel("step (sixteenth notes)")
    ax.set_ylabel("MIDI pitch")
    if title:
        ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


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


def render_wav(midi_path, wav_path):
    """MIDI -> WAV with fluidsynth and a General MIDI soundfont; None (said once) without them."""
    fluidsynth, soundfont = shutil.which("fluidsynth"), find_soundfont()
    if not fluidsynth or not soundfont:
        _say_once("wav", "no fluidsynth and General MIDI soundfont found (set BIAXIAL_CU_SOUNDFONT): "
                         "WAV files skipped")
        return None
    subprocess.run([fluidsynth, "-ni", "-F", str(wav_path), "-r", "44100", soundfont, str(midi_path)],
                   check=True, capture_output=True)
    return Path(wav_path)
