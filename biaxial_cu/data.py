"""Training data: a folder of MIDI files -> pieces, training batches, a train/validation split.

Pieces are state matrices S (T, 78, 2) uint8 (MODEL_SPEC.md section 1), kept in a dict keyed by
the file's path relative to the folder ('/' separators, extension kept), in sorted key order,
so that everything downstream (sampling with a seeded generator, the split) is reproducible.

- load_pieces_report walks the folder (os.walk, not following linked folders), reads every
  .mid/.midi file (any case) with read_state_matrix, and sorts the outcome into pieces and
  skipped files: unreadable (MidiError: one MidiWarning each, naming the file and the reason)
  and too short (< min_steps; no warning, they are listed in the report). Warnings raised
  while reading a file (a meter that ends the piece, a cut at max_steps) pass through. Every
  warning is one line (warn_one_line: no source line). Files that are not regular after
  following links (a FIFO, a link to a device) or exceed midi.MAX_FILE_BYTES are unreadable.
  A load says at most MAX_LOAD_WARNINGS warnings; the rest are summed up in one last warning
  (their count and a few of the skipped files; LoadReport.skipped has them all). A file name
  that does not print (a newline in it) is shown as its repr (common.shown_path).
  load_pieces is the same without the report.
- sample_batch draws segments as the original did (MODEL_SPEC.md section 6): a piece uniformly
  among those at least seq_len long, then a start uniformly from range(0, T - seq_len + 1, 16)
  (the original's range stopped one short and crashed on pieces of exactly seq_len steps).
- split_pieces shuffles the sorted keys with a seeded generator and cuts off a validation set.
"""
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import N_NOTES, SEGMENT_STRIDE, as_generator, check_int, shown_path, summarize
from .errors import MidiError
from .midi import DEFAULT_MAX_STEPS, MidiWarning, read_state_matrix

MIDI_SUFFIXES = (".mid", ".midi")
TOO_SHORT = "too short"
MAX_LOAD_WARNINGS = 10  # warnings said one by one in one folder load; the rest in one line
WARNING_ORIGIN = "biaxial_cu"  # the 'file' a folder load's warnings name: no source line is shown


@dataclass
class LoadReport:
    """What load_pieces_report found in a folder."""

    folder: Path
    pieces: dict = field(default_factory=dict)  # key -> S (T, 78, 2) uint8, sorted by key
    skipped: dict = field(default_factory=dict)  # key -> reason, sorted by key
    seconds: float = 0.0

    @property
    def too_short(self):
        """Keys of the files left out for having fewer than min_steps steps."""
        return [key for key, reason in self.skipped.items() if reason.startswith(TOO_SHORT + ":")]

    @property
    def unreadable(self):
        """Keys of the files that could not be read."""
        return [key for key, reason in self.skipped.items()
                if not reason.startswith(TOO_SHORT + ":")]

    @property
    def total_steps(self):
        return sum(S.shape[0] for S in self.pieces.values())

    def summary(self):
        """One line for people, e.g.
        'loaded 38 pieces (9123 steps) from DIR; skipped 3: 2 too short, 1 unreadable'."""
        noun = "piece" if len(self.pieces) == 1 else "pieces"
        line = f"loaded {len(self.pieces)} {noun} ({self.total_steps} steps) from {self.folder}"
        if not self.skipped:
            return line + "; skipped none"
        parts = []
        if self.too_short:
            parts.append(f"{len(self.too_short)} too short")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable")
        return line + f"; skipped {len(self.skipped)}: " + ", ".join(parts)


# ----------------------------------------------------------------------------- loading


def load_pieces(folder, *, min_steps=128, include_drums=False, max_steps=DEFAULT_MAX_STEPS):
    """Every readable MIDI file under folder with at least min_steps steps: {key: S}.

    Keys are paths relative to folder with '/' separators, in sorted order. Unreadable files
    are skipped with one MidiWarning each; a missing folder raises FileNotFoundError.
    """
    report = load_pieces_report(folder, min_steps=min_steps, include_drums=include_drums,
                                max_steps=max_steps)
    return report.pieces


def load_pieces_report(folder, *, min_steps=128, include_drums=False, max_steps=DEFAULT_MAX_STEPS):
    """Like load_pieces, but returns a LoadReport with the skipped files and the time taken."""
    folder = _check_folder(folder)
    min_steps = check_int(min_steps, "min_steps", 1)
    started = time.perf_counter()
    report = LoadReport(folder=folder)
    budget = _WarningBudget(folder)
    found, walk_errors = find_midi_files(folder)
    for key, reason in walk_errors.items():
        budget.skipped(key, reason)
        report.skipped[key] = reason
    for key, path in found.items():
        S, reason = _read_one(path, include_drums, max_steps, budget)
        if S is None:
            budget.skipped(key, reason)
            report.skipped[key] = reason
        elif S.shape[0] < min_steps:
            report.skipped[key] = f"{TOO_SHORT}: {S.shape[0]} steps < {min_steps}" + reason
        else:
            report.pieces[key] = S
    budget.close()
    report.skipped = dict(sorted(report.skipped.items()))
    report.seconds = time.perf_counter() - started
    return report


def find_midi_files(folder):
    """({key: path} of the .mid/.midi files under folder, sorted by key; {key: reason} of the
    sub-folders that could not be listed)."""
    folder = Path(folder)
    found = {}
    walk_errors = {}

    def on_error(error):
        key = _key_of(Path(error.filename), folder) if error.filename else "."
        walk_errors[key] = f"cannot list the folder ({type(error).__name__}: {error.strerror})"

    for directory, _subdirs, files in os.walk(folder, onerror=on_error):
        for name in files:
            if name.lower().endswith(MIDI_SUFFIXES):
                path = Path(directory) / name
                found[_key_of(path, folder)] = path
    return dict(sorted(found.items())), walk_errors


def shipped_corpus_dir():
    """The folder of MIDI files that ships with the package (Bach chorales, see its README)."""
    return Path(__file__).resolve().with_name("corpus_midi")


def _key_of(path, folder):
    return path.relative_to(folder).as_posix()


def _check_folder(folder):
    try:
        folder = Path(folder)
    except TypeError:
        raise TypeError(f"folder must be a path, got {type(folder).__name__}") from None
    if not folder.exists():
        raise FileNotFoundError(f"music folder not found: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder} (give the folder that holds the "
                                 "MIDI files)")
    return folder


def _read_one(path, include_drums, max_steps, budget=None):
    """(S, note) for a readable file, note being '' or ' (<warnings while reading>)';
    (None, reason) for an unreadable one. Warnings raised while reading pass through."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            S = read_state_matrix(path, include_drums=include_drums, max_steps=max_steps)
        except MidiError as e:
            S, reason = None, _strip_name(str(e), path)
        except Exception as e:  # noqa: BLE001 - a bug in the reader must not stop a folder load
            S, reason = None, f"unexpected error while reading ({type(e).__name__}: {e})"
    for record in caught:  # re-issue under the caller's filters, one line each
        if budget is None:
            warn_one_line(record.message, record.category)
        else:
            budget.say(record.message, record.category, _key_of_or_name(path, budget.folder))
    if S is None:
        return None, reason
    notes = "; ".join(_strip_name(str(record.message), path) for record in caught)
    return S, f" ({notes})" if notes else ""


def _strip_name(message, path):
    """'path: reason' -> 'reason' (the reader's messages start with the file name)."""
    prefix = f"{shown_path(path)}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _key_of_or_name(path, folder):
    try:
        return _key_of(Path(path), folder)
    except ValueError:
        return os.fspath(path)


class _WarningBudget:
    """The warnings of one folder load: the first MAX_LOAD_WARNINGS said one by one, the rest
    counted and said as one line by close()."""

    def __init__(self, folder):
        self.folder = folder
        self.said = 0
        self.held_back = []  # keys of the files whose warnings were not said

    def say(self, message, category, key):
        if self.said < MAX_LOAD_WARNINGS:
            self.said += 1
            warn_one_line(message, category)
        else:
            self.held_back.append(key)

    def skipped(self, key, reason):
        self.say(f"skipped {shown_path(self.folder / key)}: {reason}", MidiWarning, key)

    def close(self):
        if self.held_back:
            files = list(dict.fromkeys(self.held_back))
            noun = "warning" if len(self.held_back) == 1 else "warnings"
            warn_one_line(f"{len(self.held_back)} more {noun} while loading {shown_path(self.folder)} "
                          f"not shown (after the first {MAX_LOAD_WARNINGS}), about files "
                          f"{summarize(shown_path(f) for f in files)}; LoadReport.skipped lists "
                          "every skipped file", MidiWarning)


def warn_one_line(message, category=MidiWarning):
    """warnings.warn that prints as one line, 'biaxial_cu:0: MidiWarning: <message>', without a
    source line (the message names the file; the line of our code that warned says nothing).
    Filters and catch_warnings see it as any warning of that category."""
    if isinstance(message, Warning):  # keep its class, on one line
        try:
            message = type(message)(" ".join(str(message).split()))
        except Exception:  # noqa: BLE001, S110 - a warning class with another signature: as it is
            pass
    text = message if isinstance(message, Warning) else " ".join(str(message).split())
    warnings.warn_explicit(text, category, WARNING_ORIGIN, 0, module="biaxial_cu.data")


# ----------------------------------------------------------------------------- batches


def segment_starts(n_steps, seq_len):
    """The allowed segment starts of a piece of n_steps steps: range(0, n_steps - seq_len + 1, 16)."""
    return range(0, n_steps - seq_len + 1, SEGMENT_STRIDE)


def sample_batch(pieces, batch_size=10, seq_len=128, rng=None):
    """batch_size random segments of seq_len steps: (batch_size, seq_len, 78, 2) uint8.

    Each segment: a piece uniformly among the pieces with at least seq_len steps (in sorted
    key order), then a start uniformly among segment_starts(T, seq_len). rng: a
    numpy Generator, an int seed, or None (fresh entropy).
    """
    _check_mapping(pieces)
    batch_size = check_int(batch_size, "batch_size", 1)
    seq_len = check_int(seq_len, "seq_len", 1)
    rng = as_generator(rng)
    eligible = [pieces[key] for key in sorted(pieces) if _piece_steps(pieces[key], key) >= seq_len]
    if not eligible:
        longest = max((_piece_steps(S, key) for key, S in pieces.items()), default=0)
        raise ValueError(f"no piece has at least seq_len={seq_len} steps to sample from "
                         f"({len(pieces)} pieces, the longest {longest} steps)")
    batch = np.empty((batch_size, seq_len, N_NOTES, 2), dtype=np.uint8)  # (B, T, 78, 2)
    for b in range(batch_size):
        S = eligible[rng.integers(len(eligible))]  # (T_piece, 78, 2)
        starts = segment_starts(S.shape[0], seq_len)
        start = starts[rng.integers(len(starts))]
        batch[b] = S[start:start + seq_len]
    return batch


def _check_mapping(pieces):
    if not hasattr(pieces, "keys") or not hasattr(pieces, "__getitem__"):
        raise TypeError(f"pieces must be a dict of name -> (T, 78, 2) array (as load_pieces "
                        f"returns), got {type(pieces).__name__}")


def _piece_steps(S, key):
    shape = np.shape(S)
    if len(shape) != 3 or shape[1:] != (N_NOTES, 2):
        raise ValueError(f"piece {key!r} must have shape (T, {N_NOTES}, 2), got {shape}")
    return shape[0]


# ----------------------------------------------------------------------------- split


def split_pieces(pieces, validation_fraction=0.1, seed=0):
    """Split pieces into (train, validation) dicts, each in sorted key order.

    The sorted keys are shuffled with a Generator seeded by seed; validation gets
    round(validation_fraction * n) pieces, but at least 1 when the fraction is > 0 and there
    are 2 or more pieces, and train always keeps at least 1 piece (when there is one).
    """
    _check_mapping(pieces)
    fraction = _check_fraction(validation_fraction)
    keys = sorted(pieces)
    n = len(keys)
    n_validation = round(fraction * n)
    if fraction > 0 and n >= 2:
        n_validation = max(n_validation, 1)
    n_validation = min(n_validation, max(n - 1, 0))
    order = np.random.default_rng(seed).permutation(n)  # (n,)
    validation_keys = {keys[i] for i in order[:n_validation]}
    train = {key: pieces[key] for key in keys if key not in validation_keys}
    validation = {key: pieces[key] for key in keys if key in validation_keys}
    return train, validation


def _check_fraction(fraction):
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(
            fraction, (int, float, np.integer, np.floating)):
        raise TypeError(f"validation_fraction must be a number, got {fraction!r}")
    if not 0 <= fraction < 1:  # also refuses NaN
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    return float(fraction)
