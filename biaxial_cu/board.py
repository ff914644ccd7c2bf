"""TensorBoard logs: a run's curves, samples, gradients and parameters, written by tensorboardX.

The `tensorboard` extra (pip install 'biaxial_cu[tensorboard]') brings tensorboardX, which writes
the event files, TensorBoard, which shows them (tensorboard --logdir runs/), and soundfile, which
tensorboardX encodes audio with. tensorboardX is imported only when a RunBoard is made, so the
base install works without it; available() says whether it is installed.

What a RunBoard writes, every value at the step (batch) it belongs to:
  loss/train, loss/validation                      loss per note-step, at each log row
  speed/seconds_per_batch, speed/note_steps_per_second
  sample/piano_roll                                an image, piano_roll_pixels' rule (viz)
  sample/audio                                     the sample's WAV (render_wav), mixed to mono
  gradient_norm/<tensor>, gradient_norm/clipped_segments    before clipping (gradient_norms)
  parameters/<tensor>                              histograms
Training gives resume_step, the batch it continues after: 0 for a new run, the checkpoint's on
--resume. The writer then marks a (re)start at resume_step + 1 (tensorboardX's purge_step), and
TensorBoard hides every event that earlier writers in the folder logged from that step on: each
curve goes on from the checkpoint and no step appears twice. TensorBoard's server takes the first
such mark in a folder for the run's start and only later ones for restarts, so a new run must
write one too (resume_step=0). TensorBoard's fast loader (its default) ignores the mark and
instead drops a curve's later points when one of its steps comes again, which a resumed run does
at its first log row and sample, on the same steps as before. resume_step=None (evaluate) only
adds events.
"""
import importlib.util
import os
import time
import warnings
from pathlib import Path

import numpy as np

from .common import CLIP_NORM, to_host
from .params import clip_segment_count
from .viz import piano_roll_pixels, read_wav

INSTALL = "pip install 'biaxial_cu[tensorboard]'"
FLUSH_SECONDS = 10  # the writer's thread writes pending events out this often
_said = set()


def available():
    """Whether the writer library (tensorboardX, the `tensorboard` extra) is installed."""
    return importlib.util.find_spec("tensorboardX") is not None


def gradient_norms(sq_norms, shapes, max_norm=CLIP_NORM):
    """({tensor name: L2 norm of its gradient before clipping}, clipped segments).

    sq_norms: the squared norm of every clipping segment, in the flat order (what the optimiser
    computes first: reference.segment_sq_norms over params.segment_offsets(shapes)); shapes:
    {name: shape} in the flat order (params.param_shapes). The model clips per segment, one per
    gate block (MODEL_SPEC 5), so a tensor's norm is the root of its segments' summed squares,
    and `clipped` counts the segments whose norm exceeded max_norm, i.e. were scaled down."""
    sq = np.asarray(to_host(sq_norms), np.float64).ravel()
    counts = [clip_segment_count(name) for name in shapes]
    if sq.size != sum(counts):
        raise ValueError(f"sq_norms has {sq.size} segments; these {len(counts)} tensors have {sum(counts)}")
    norms, start = {}, 0
    for name, count in zip(shapes, counts):
        norms[name] = float(np.sqrt(sq[start:start + count].sum()))
        start += count
    return norms, int(np.count_nonzero(np.sqrt(sq) > max_norm))


class RunBoard:
    """One run's TensorBoard log in logdir (made if missing; event files are only ever added).
    resume_step: the batch the run continues after (0 for a new run; the checkpoint's when
    resuming): events logged there by earlier writers from resume_step + 1 on are hidden.
    None: a writer that only adds (evaluate)."""

    def __init__(self, logdir, *, resume_step=None):
        if not available():
            raise RuntimeError(f"TensorBoard logs need tensorboardX: {INSTALL}")
        from tensorboardX import SummaryWriter

        purge = None if resume_step is None else int(resume_step) + 1  # hide steps > resume_step
        self.logdir = Path(logdir)
        self.writer = SummaryWriter(str(self.logdir), purge_step=purge, flush_secs=FLUSH_SECONDS,
                                    filename_suffix=_file_suffix())

    def scalar(self, step, tag, value):
        """One number; None (a log row without validation, say) is left out."""
        if value is not None:
            self.writer.add_scalar(tag, float(value), int(step))

    def text(self, step, tag, markdown):
        self.writer.add_text(tag, markdown, int(step))

    def scalars(self, step, train_loss, val_loss, seconds_per_batch, note_steps_per_second):
        """A log row: losses per note-step and the speed since the last row."""
        self.scalar(step, "loss/train", train_loss)
        self.scalar(step, "loss/validation", val_loss)
        self.scalar(step, "speed/seconds_per_batch", seconds_per_batch)
        self.scalar(step, "speed/note_steps_per_second", note_steps_per_second)

    def sample(self, step, piece, wav_path=None):
        """A sample (T, 78, 2) as a piano-roll image, and its WAV file as audio when given."""
        self.writer.add_image("sample/piano_roll", piano_roll_pixels(piece), int(step), dataformats="HW")
        if wav_path is not None:
            samples, rate = read_wav(wav_path)  # (frames, channels) in [-1, 1)
            mono = samples.mean(axis=1, keepdims=True).astype(np.float32)  # half the bytes of stereo
            try:
                self.writer.add_audio("sample/audio", mono, int(step), sample_rate=rate)
            except (ImportError, OSError) as e:  # soundfile (or its libsndfile) missing
                _say_once("audio", f"no audio in TensorBoard: tensorboardX needs soundfile ({e}); {INSTALL}")

    def gradients(self, step, norms, clipped):
        """Per-tensor gradient norms before clipping and the segments clipped (gradient_norms)."""
        for name, norm in norms.items():
            self.scalar(step, f"gradient_norm/{name}", norm)
        self.scalar(step, "gradient_norm/clipped_segments", clipped)

    def histograms(self, step, params):
        """A histogram of every parameter tensor ({name: numpy or device array})."""
        for name, value in params.items():
            self.writer.add_histogram(f"parameters/{name}", np.asarray(to_host(value)).ravel(), int(step))

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def _file_suffix():
    """The end of a new event file's name. tensorboardX names it by the second and the host alone,
    so a second writer within the same second would overwrite the first's file; TensorBoard reads
    a folder's files in the order of their names, so the suffix keeps that order the order of
    writing: the nanoseconds within the second, then the process."""
    return f".{time.time_ns() % 10 ** 9:09d}.{os.getpid()}"


def _say_once(key, message):
    if key not in _said:
        _said.add(key)
        warnings.warn(message, stacklevel=3)
