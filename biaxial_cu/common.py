"""The numbers every layer shares (MODEL_SPEC sections 1-3, 6) and the small helpers that go with
them. kernels/common.cuh holds the same constants for the CUDA side."""
import os
import tempfile
from dataclasses import dataclass

import numpy as np

N_NOTES = 78  # notes 0..77 = MIDI pitches LOWEST_PITCH..LOWEST_PITCH + 77
LOWEST_PITCH = 24
N_FEATURES = 80  # note input features (MODEL_SPEC 2)
SEGMENT_LEN = 128  # a training segment (MODEL_SPEC 6); generation seeds are step 0 of one
BAR_STEPS_4_4 = 16  # a bar of 4/4 in sixteenth steps: the meter before any time signature
SEGMENT_STRIDE = BAR_STEPS_4_4  # the original's segment starts: multiples of one 4/4 bar
EXAMPLES = 3  # a long list in a message: its count and this many examples
CELL_ACTIVATIONS = ("identity", "tanh")  # the candidate g's activation: the original's, or tanh
# How time signatures are read (midi.py): "original" ends a piece at a numerator other than 2 or
# 4 and counts beats from each segment's start; "all" reads every meter and counts from bar lines.
METER_MODES = ("original", "all")
ADADELTA_RHO, ADADELTA_EPS = 0.95, 1e-6  # MODEL_SPEC 5
CLIP_NORM = 5.0  # each gradient segment (gate block) clipped to this L2 norm (MODEL_SPEC 5)


@dataclass
class ComposeTrace:
    """A composition of K pieces and what led to it, as every backend's compose returns it."""

    states: np.ndarray  # (K, steps + 1, 78, 2) uint8: seeds then generated states
    probabilities: np.ndarray  # (K, steps, 78, 2): (P0, P1) behind state t + 1
    conservativity: np.ndarray  # (K, steps + 1) float64: the value used at step t (last: after)


def as_generator(rng):
    """A numpy Generator from a Generator, an int seed or None (fresh entropy); TypeError else."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_))):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def to_host(array):
    """A numpy array of a numpy or device (CuPy: has .get()) array; other objects unchanged."""
    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return array.get()
    return array


def check_int(value, what, minimum, not_int=TypeError):
    """value as an int >= minimum; not_int (TypeError, or ValueError where an API promises it)
    for anything but an int, ValueError below the minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise not_int(f"{what} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def summarize(items, examples=EXAMPLES):
    """'n: a, b, c and k more' for a long list, the whole list when it is short."""
    items = [str(i) for i in items]
    if len(items) <= examples:
        return ", ".join(items)
    return f"{len(items)}: {', '.join(items[:examples])} and {len(items) - examples} more"


def shown_path(path):
    """A path as messages show it: as is when every character prints, else its repr (quoted,
    with a newline as \\n and an undecodable byte as \\udcXX), so a message stays one line
    and can be printed whatever the terminal's encoding."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(os.fspath(path))
    return text if text.isprintable() else repr(text)


def write_atomically(path, write, *, binary=True):
    """Write a file through a temporary file in the same folder and a rename: a reader (or a run
    that dies mid-write) sees the old file or the new one whole. write(f) writes the content.
    The file follows the umask like any other output."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}-", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
