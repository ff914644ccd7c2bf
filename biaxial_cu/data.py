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
- Files are read by worker processes (all cores by default; a folder of fewer than
  PARALLEL_MIN_FILES files in this process). Workers send back (piece, reason, warnings as
  (category, text)); this process says the warnings in key order through the same budget, so
  the outcome is the serial one. A broken pool (a worker killed) leaves the rest to this process.
- The corpus cache (corpus_cache.py): the first load of a folder streams every readable piece
  (whatever its length: min_steps applies at load) and every skip into one memory-mapped file
  and its index, with each file's warnings; later loads read the index, re-read only the files
  whose size or mtime changed (and new ones), say the stored warnings again, and return views
  of the mapped array: a start costs an index, not a parse, and a corpus larger than memory
  trains, sample_batch copying only the segments it draws.
- sample_batch draws segments as the original did (MODEL_SPEC.md section 6): a piece uniformly
  among those at least seq_len long, then a start uniformly from range(0, T - seq_len + 1, 16)
  (the original's range stopped one short and crashed on pieces of exactly seq_len steps).
- split_pieces shuffles the sorted keys with a seeded generator and cuts off a validation set.
"""
import contextlib
import multiprocessing
import os
import signal
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .common import METER_MODES, N_NOTES, SEGMENT_STRIDE, as_generator, check_int, shown_path, summarize
from .corpus_cache import (CacheDamaged, CachePlace, CacheUnwritable, CorpusCacheWarning,
                           build_lock, default_cache_dir, file_stamp, is_inside, open_cache,
                           reading_options, rewrite_index, write_cache)
from .errors import MidiError
from .midi import (DEFAULT_MAX_STEPS, MAX_STEPS_LIMIT, MidiWarning, bar_positions, meter_changes_of,
                   read_state_matrix)

MIDI_SUFFIXES = (".mid", ".midi")
TOO_SHORT = "too short"
MAX_LOAD_WARNINGS = 10  # warnings said one by one in one folder load; the rest in one line
WARNING_ORIGIN = "biaxial_cu"  # the 'file' a folder load's warnings name: no source line is shown
PARALLEL_MIN_FILES = 256  # fewer files are read in this process: starting a pool (forkserver,
# workers import numpy and mido) costs 0.2-0.5 s, 100-250 files' reading on one core
MAX_FILES_PER_TASK = 32  # files a worker reads per task (a few ms each): few round trips


@dataclass
class LoadReport:
    """What load_pieces_report found in a folder."""

    folder: Path
    pieces: dict = field(default_factory=dict)  # key -> S (T, 78, 2) uint8, sorted by key
    skipped: dict = field(default_factory=dict)  # key -> reason, sorted by key
    seconds: float = 0.0
    files_read: int = 0  # MIDI files parsed by this load (the others came from the cache)
    cache_index: Path = None  # the corpus cache's index this load used, or None (no cache)
    bars: dict = None  # meters "all": key -> the piece's meter changes ((step, bar length), ...); None otherwise

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


def load_pieces(folder, *, min_steps=128, include_drums=False, max_steps=DEFAULT_MAX_STEPS,
                workers=None, cache=True, cache_dir=None, meters="original"):
    """Every readable MIDI file under folder with at least min_steps steps: {key: S}.

    Keys are paths relative to folder with '/' separators, in sorted order. Unreadable files
    are skipped with one MidiWarning each; a missing folder raises FileNotFoundError.
    workers, cache, cache_dir and meters: see load_pieces_report (whose .bars holds the bar
    lines that meters "all" reads).
    """
    report = load_pieces_report(folder, min_steps=min_steps, include_drums=include_drums,
                                max_steps=max_steps, workers=workers, cache=cache,
                                cache_dir=cache_dir, meters=meters)
    return report.pieces


def load_pieces_report(folder, *, min_steps=128, include_drums=False, max_steps=DEFAULT_MAX_STEPS,
                       workers=None, cache=True, cache_dir=None, meters="original"):
    """Like load_pieces, but returns a LoadReport with the skipped files and the time taken.

    meters: how time signatures are read (midi.read_state_matrix): "original", or "all", where
    report.bars gets each piece's meter changes, for sample_batch's bar lines and positions.

    workers: processes that read files (None: every core this process may use; 1: this
    process alone); folders of fewer than PARALLEL_MIN_FILES files to read are read here.
    cache: keep the pieces in a corpus cache (corpus_cache.py) and use it next time, re-reading
    only changed and new files; cached pieces are read-only views of the mapped cache.
    cache_dir: the cache folder (None: corpus_cache.default_cache_dir(), which XDG_CACHE_HOME
    redirects); one inside folder is refused (ValueError). A cache that cannot be used costs
    one CorpusCacheWarning, never the load. The result is the same with or without the cache
    and with any number of workers: pieces, skipped files, warnings and their order.
    """
    folder = _check_folder(folder)
    min_steps = check_int(min_steps, "min_steps", 1)
    include_drums = _check_bool(include_drums, "include_drums")
    max_steps = _check_max_steps(max_steps)
    workers = _check_workers(workers)
    if meters not in METER_MODES:
        raise ValueError(f"meters must be one of {METER_MODES}, got {meters!r}")
    place = _cache_place(folder, include_drums, max_steps, _check_bool(cache, "cache"), cache_dir, meters)
    started = time.perf_counter()
    report = LoadReport(folder=folder, bars={} if meters == "all" else None)
    found, walk_errors = find_midi_files(folder)
    reading = _Reading(folder, include_drums, max_steps, workers, meters)
    if place is None:
        outcomes = reading.all(found)
    else:
        outcomes, report.cache_index = _outcomes_through_cache(place, found, reading)
    report.files_read = reading.files_read
    budget = _WarningBudget(folder)
    for key, reason in walk_errors.items():
        budget.skipped(key, reason)
        report.skipped[key] = reason
    for key, path in found.items():
        _sort_outcome(report, budget, key, path, outcomes[key], min_steps)
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


def _check_bool(value, what):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def _check_max_steps(max_steps):
    max_steps = check_int(max_steps, "max_steps", 1)
    if max_steps > MAX_STEPS_LIMIT:
        raise ValueError(f"max_steps must be <= {MAX_STEPS_LIMIT}, got {max_steps}")
    return max_steps


def _check_workers(workers):
    """workers as an int >= 1; None: the cores this process may run on."""
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
            return os.cpu_count() or 1
    return check_int(workers, "workers", 1)


def _sort_outcome(report, budget, key, path, outcome, min_steps):
    """Say one file's warnings (through the budget) and put it into the report: a piece,
    unreadable, or too short."""
    piece, reason, notes, bars = outcome
    for category, named, text in notes:
        budget.say(f"{shown_path(path)}: {text}" if named else text, _category_named(category), key)
    if piece is None:
        budget.skipped(key, reason)
        report.skipped[key] = reason
    elif piece.shape[0] < min_steps:
        details = "; ".join(text for _, _, text in notes)
        report.skipped[key] = (f"{TOO_SHORT}: {piece.shape[0]} steps < {min_steps}"
                               + (f" ({details})" if details else ""))
    else:
        report.pieces[key] = piece
        if report.bars is not None:
            report.bars[key] = bars


# ----------------------------------------------------------------------------- reading files


class _Reading:
    """Reads files of one folder with one set of options, in this process or in a pool of
    worker processes, and counts the files it read."""

    def __init__(self, folder, include_drums, max_steps, workers, meters):
        self.folder = folder
        self.include_drums = include_drums
        self.max_steps = max_steps
        self.workers = workers
        self.meters = meters
        self.files_read = 0

    def all(self, paths):
        """{key: FileOutcome} of every file of paths ({key: path}), in memory."""
        with contextlib.closing(self.each(paths)) as outcomes:
            return dict(outcomes)

    def each(self, paths):
        """(key, FileOutcome) of every file of paths ({key: path}), in paths' order, one at a
        time: in a pool when there are PARALLEL_MIN_FILES files or more and workers > 1."""
        items = list(paths.items())
        done = 0
        if self.workers > 1 and len(items) >= PARALLEL_MIN_FILES and _workers_can_start():
            with contextlib.closing(self._in_pool(items)) as outcomes:
                for outcome in outcomes:
                    yield items[done][0], outcome
                    done += 1
        for key, path in items[done:]:  # all of them, or those a broken pool left
            self.files_read += 1
            yield key, read_file_outcome(path, self.include_drums, self.max_steps, self.meters)

    def _in_pool(self, items):
        """The outcomes of items in order, read by worker processes; stops early (with one
        warning) if the pool breaks, leaving the rest to the caller. Ctrl-C (here; the workers
        ignore it) cancels what is queued, waits for the chunks being read, and propagates."""
        workers = min(self.workers, len(items))
        if sys.platform == "win32":
            workers = min(workers, 61)  # the most ProcessPoolExecutor takes there
        chunk = max(1, min(MAX_FILES_PER_TASK, len(items) // (4 * workers)))
        tasks = [(os.fspath(path), self.include_drums, self.max_steps, self.meters) for _, path in items]
        done = 0
        pool = None
        try:
            pool = ProcessPoolExecutor(workers, mp_context=_pool_context(),
                                       initializer=_ignore_interrupts)
            for outcome in pool.map(_read_task, tasks, chunksize=chunk):
                self.files_read += 1
                yield FileOutcome(*outcome)
                done += 1
        except (BrokenProcessPool, OSError) as e:
            warn_one_line(f"reading {shown_path(self.folder)} in {workers} worker processes "
                          f"failed ({type(e).__name__}: {e}); reading the other "
                          f"{len(items) - done} files in this process", RuntimeWarning)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


class FileOutcome(NamedTuple):
    """What reading one file gave."""

    piece: object  # S (T, 78, 2) uint8, or None when the file is unreadable
    reason: str  # why it is unreadable ('' for a piece)
    notes: tuple  # ((category, named, text), ...): the warnings reading it raised, see _note_of
    bars: tuple = ()  # meters "all": the piece's meter changes (midi.meter_changes_of)


def read_file_outcome(path, include_drums, max_steps, meters="original"):
    """The FileOutcome of one file. Never raises for a bad file: a MidiError (or a bug in the
    reader) makes it unreadable with the reason; the warnings it raised are recorded, not said."""
    bars = ()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read = read_state_matrix(path, include_drums=include_drums, max_steps=max_steps, meters=meters,
                                     return_bar_positions=meters == "all")
            reason = ""
            S, bars = (read[0], tuple(meter_changes_of(read[1]))) if meters == "all" else (read, ())
        except MidiError as e:
            S, reason = None, _strip_name(str(e), path)
        except Exception as e:  # noqa: BLE001 - a bug in the reader must not stop a folder load
            S, reason = None, f"unexpected error while reading ({type(e).__name__}: {e})"
    return FileOutcome(S, reason, tuple(_note_of(record, path) for record in caught), bars)


def _read_task(task):
    """read_file_outcome in a worker process, as a plain tuple (what the pool sends back)."""
    return tuple(read_file_outcome(*task))


def _ignore_interrupts():
    """A worker's start: Ctrl-C reaches the whole process group; the parent alone handles it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_context():
    """forkserver where there is one (POSIX): workers start from a clean server process, not
    from a fork of this one, which may run threads (numba, CuPy, tqdm) whose locks a fork would
    copy held; spawn elsewhere. Either way a script that loads a big folder (or trains on one)
    must do so under `if __name__ == "__main__":`, as any multiprocessing program."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _workers_can_start():
    """Whether worker processes can import this program's __main__ as forkserver and spawn do:
    not when it was read from stdin (`python - < script`; its __file__ is '<stdin>')."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return getattr(main, "__spec__", None) is not None or path is None or os.path.isfile(path)


def _note_of(record, path):
    """A warning recorded while reading path as (category, named, text): its class as
    'module.qualname', whether its text started with the file's shown name (then dropped, and
    put back from the folder of each load that says it), and the text."""
    category = record.category
    message = str(record.message)
    prefix = f"{shown_path(path)}: "
    named = message.startswith(prefix)
    return (f"{category.__module__}.{category.__qualname__}", named,
            message[len(prefix):] if named else message)


def _category_named(name):
    """The warning class a note's 'module.qualname' names, among the modules already imported
    (nothing is imported for it); UserWarning when there is none."""
    module_name, _, qualname = name.rpartition(".")
    found = sys.modules.get(module_name)
    for part in qualname.split(".") if found is not None else ():
        found = getattr(found, part, None)
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


def _strip_name(message, path):
    """'path: reason' -> 'reason' (the reader's messages start with the file name)."""
    prefix = f"{shown_path(path)}: "
    return message[len(prefix):] if message.startswith(prefix) else message


# ----------------------------------------------------------------------------- the corpus cache


def _cache_place(folder, include_drums, max_steps, cache, cache_dir, meters):
    """The CachePlace of this load, or None for no cache (cache=False, or a default cache
    folder that cannot be used: one warning). ValueError for a cache_dir inside folder."""
    if cache_dir is not None:
        try:
            cache_dir = Path(cache_dir)
        except TypeError:
            raise TypeError(f"cache_dir must be a path or None, got {type(cache_dir).__name__}") from None
    if not cache:
        return None
    folder_real = os.path.realpath(folder)
    if cache_dir is None:
        try:
            cache_dir = default_cache_dir()
        except (RuntimeError, KeyError, OSError) as e:  # no home folder
            warn_one_line(f"no cache folder ({type(e).__name__}: {e}); loading {shown_path(folder)} "
                          "without the corpus cache (give cache_dir)", CorpusCacheWarning)
            return None
        if is_inside(cache_dir, folder_real):
            warn_one_line(f"the cache folder {shown_path(cache_dir)} is inside the music folder "
                          f"{shown_path(folder)}; loading without the corpus cache (give "
                          "cache_dir elsewhere)", CorpusCacheWarning)
            return None
    elif is_inside(cache_dir, folder_real):
        raise ValueError(f"cache_dir {shown_path(cache_dir)} is inside the music folder "
                         f"{shown_path(folder)}: the cache must live elsewhere (the music "
                         "folder may be read-only, and it is what the cache describes)")
    return CachePlace(cache_dir, folder_real, reading_options(include_drums, max_steps, meters))


def _outcomes_through_cache(place, found, reading):
    """({key: FileOutcome} of every file of found, the index path or None): from the cache where
    it still describes the file, read otherwise; the cache then rewritten (pieces streamed into
    it) so that it describes them all. Pieces are views of the mapped cache. What is not a
    regular file (a FIFO, a dangling link) is read at every load and never cached."""
    scanned_ns = time.time_ns()  # before any file is looked at: see corpus_cache.RACY_NS
    stamps = {key: file_stamp(path) for key, path in found.items()}
    unstamped = {key: path for key, path in found.items() if stamps[key] is None}
    outcomes = reading.all(unstamped)
    try:
        cache = open_cache(place)
    except CacheDamaged:  # said below, if still so once this process may rebuild it
        cache = None
    if not _cache_plan(cache, found, stamps)[2]:
        with build_lock(place):  # another process may be building it: wait, then look again
            cache = _updated_cache(place, found, stamps, scanned_ns, reading, outcomes)
    if cache is None:
        return outcomes, None
    outcomes.update(_cached_outcomes(cache, [key for key in found if key not in unstamped]))
    return outcomes, place.index_path


def _cache_plan(cache, found, stamps):
    """(keys of found the cache (or None) still describes, {key: path} of the files to read,
    whether the cache is current: nothing to read and no file removed)."""
    kept = [key for key in found if cache is not None and cache.trusts(key, stamps[key])]
    kept_set = set(kept)
    to_read = {key: path for key, path in found.items()
               if stamps[key] is not None and key not in kept_set}
    return kept, to_read, cache is not None and not to_read and len(kept) == len(cache.entries)


def _updated_cache(place, found, stamps, scanned_ns, reading, outcomes):
    """The cache of place brought up to date (read under the build lock), or None when it
    cannot be written: then outcomes gets every file's outcome, from the old cache and read."""
    old = _open_old_cache(place)
    kept, to_read, current = _cache_plan(old, found, stamps)
    if current:
        return old  # another process brought it up to date while this one waited
    try:
        if old is not None and not to_read and 2 * old.live_steps(kept) >= old.steps.shape[0]:
            return rewrite_index(old, kept, scanned_ns)  # files were removed: the array stays
        with contextlib.closing(reading.each(to_read)) as read:
            return write_cache(place, scanned_ns, old, kept,
                               ((key, stamps[key], *outcome) for key, outcome in read))
    except CacheUnwritable as e:
        warn_one_line(f"cannot write the corpus cache in {shown_path(place.directory)} ({e}); "
                      f"loading {shown_path(reading.folder)} without it", CorpusCacheWarning)
        if old is not None:
            outcomes.update(_cached_outcomes(old, kept))
        outcomes.update(reading.all(to_read))
        return None


def _open_old_cache(place):
    """The cache at place, or None (none there, another version or options, or damaged: then
    one warning, and it is rebuilt)."""
    try:
        return open_cache(place)
    except CacheDamaged as e:
        warn_one_line(f"corpus cache {shown_path(place.index_path)} is damaged ({e}); rebuilding",
                      CorpusCacheWarning)
        return None


def _cached_outcomes(cache, keys):
    """{key: FileOutcome} of keys as the cache records them."""
    outcomes = {}
    for key in keys:
        entry = cache.entries[key]
        piece = cache.piece(entry) if entry.offset >= 0 else None
        outcomes[key] = FileOutcome(piece, entry.skipped, entry.notes, entry.bars)
    return outcomes


# ----------------------------------------------------------------------------- warnings


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


def sample_batch(pieces, batch_size=10, seq_len=128, rng=None, *, bars=None):
    """batch_size random segments of seq_len steps: (batch_size, seq_len, 78, 2) uint8.

    Each segment: a piece uniformly among the pieces with at least seq_len steps (in sorted
    key order), then a start uniformly among segment_starts(T, seq_len). rng: a
    numpy Generator, an int seed, or None (fresh entropy).
    bars (meters "all": LoadReport.bars, {key: meter changes}): a segment starts on one of its
    piece's bar lines instead (a 4/4 piece's are segment_starts: the same batch), and the
    result is (batch, positions (batch_size, seq_len) int32, each step's bar position).
    """
    _check_mapping(pieces)
    batch_size = check_int(batch_size, "batch_size", 1)
    seq_len = check_int(seq_len, "seq_len", 1)
    rng = as_generator(rng)
    eligible = [key for key in sorted(pieces) if _piece_steps(pieces[key], key) >= seq_len]
    if not eligible:
        longest = max((_piece_steps(S, key) for key, S in pieces.items()), default=0)
        raise ValueError(f"no piece has at least seq_len={seq_len} steps to sample from "
                         f"({len(pieces)} pieces, the longest {longest} steps)")
    if bars is not None and any(key not in bars for key in eligible):
        raise ValueError("bars must hold the meter changes of every piece (LoadReport.bars)")
    batch = np.empty((batch_size, seq_len, N_NOTES, 2), dtype=np.uint8)  # (B, T, 78, 2)
    positions = np.empty((batch_size, seq_len), dtype=np.int32)  # (B, T)
    for b in range(batch_size):
        key = eligible[rng.integers(len(eligible))]
        S = pieces[key]  # (T_piece, 78, 2)
        if bars is None:
            starts = segment_starts(S.shape[0], seq_len)
        else:
            pos = bar_positions(bars[key], S.shape[0])  # (T_piece,)
            starts = np.flatnonzero(pos[:S.shape[0] - seq_len + 1] == 0)  # bar lines; step 0 is one
        start = starts[rng.integers(len(starts))]
        batch[b] = S[start:start + seq_len]
        if bars is not None:
            positions[b] = pos[start:start + seq_len]
    return batch if bars is None else (batch, positions)


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
