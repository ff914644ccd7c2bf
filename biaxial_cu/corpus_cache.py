"""The corpus cache: a music folder's pieces in one memory-mapped file, so that a later load of
the folder reads an index and maps the steps instead of parsing every MIDI file again.

One cache per music folder (its real path) and reading options, in the cache folder
(default_cache_dir(); never inside the music folder, so a read-only music folder works):
- <stem>-<token>.npy: every cached piece's steps one after another, (N, 78, 2) uint8, a plain
  .npy file (format 1.0, a header of exactly HEADER_BYTES bytes) that np.load(mmap_mode="r")
  also reads. A piece is the slice [offset, offset + steps) of it.
- <stem>.json: the index. The format and its version, the reading options (include_drums,
  max_steps, READER_VERSION, mido's version), the folder's real path, the array's file name and
  length, the time of the scan that wrote it, and for every file key: the file's size and
  mtime_ns when it was read, then (offset, steps) of its piece or the reason it was skipped,
  and the warnings reading it gave (category, whether the text starts with the file's name,
  text without that name), so that a cached load says what a fresh one would.
  <stem> is 'corpus-<folder name>-<16 hex digits of a hash of the real path and options>'.

A file's entry is trusted when its size and mtime_ns are unchanged and its mtime is more than
RACY_NS before the scan that wrote the entry (a file changed twice within the file system's
timestamp resolution keeps its mtime: such a recent entry is read again next time).

Writing: a new array goes to a temporary file (pieces are written as they arrive, the header
last), is renamed into place under a fresh token, then the index is replaced atomically; only
then are older arrays of the same stem deleted. A reader therefore sees an old index with its
old array or the new pair (an array deleted under it sends it back to the new index). Processes
that load one folder at once take turns to rewrite its cache (build_lock: fcntl.flock on POSIX).
Reading validates everything (JSON types, offsets within the array, the .npy header, the file's
exact length) and raises CacheDamaged(why) for anything wrong; no pickle anywhere. Another
format version or other options give None: the cache is rebuilt.
This module does no MIDI reading and says no warnings: data.py does both.
"""
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import re
import secrets
import stat
import sys
import time
from pathlib import Path

import numpy as np

try:
    import fcntl  # POSIX: the build lock
except ImportError:
    fcntl = None

from .common import N_NOTES, shown_path, write_atomically

CACHE_FORMAT = "biaxial_cu corpus cache"
CACHE_VERSION = 1  # of the files' layout; another version is rebuilt
READER_VERSION = 1  # raise when midi.read_state_matrix reads any file differently
RACY_NS = 2 * 10**9  # files changed this close before a scan are read again (FAT: 2 s mtime)
HEADER_BYTES = 128  # the .npy header we write: magic, length, dict, padded (numpy aligns to 64)
STEP_BYTES = N_NOTES * 2  # one step of a piece, (78, 2) uint8
COPY_BYTES = 16 * 2**20  # steps copied from an old array per read: bounded memory
STALE_TMP_NS = 3600 * 10**9  # a temporary file of ours this old was left by a killed run
OPEN_ATTEMPTS = 3  # reads of an index whose array another process keeps replacing


class CacheDamaged(Exception):
    """A corpus cache is there but wrong (unreadable, truncated, inconsistent)."""


class _ArrayGone(CacheDamaged):
    """The array an index names is missing (deleted, or replaced by another process)."""


class CacheUnwritable(Exception):
    """A corpus cache could not be written (a read-only or full cache folder, ...)."""


class CorpusCacheWarning(UserWarning):
    """The corpus cache was damaged (and is rebuilt) or could not be used (the load goes on)."""


# ----------------------------------------------------------------------------- where


def default_cache_dir():
    """The user's cache folder for biaxial_cu: $XDG_CACHE_HOME/biaxial_cu where that is set
    (an absolute path, on any system), else ~/.cache/biaxial_cu (Linux and other POSIX),
    ~/Library/Caches/biaxial_cu (macOS), %LOCALAPPDATA%\\biaxial_cu\\Cache (Windows).
    RuntimeError when there is no home folder to put it in."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "biaxial_cu"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA", "")
        base = Path(local) if os.path.isabs(local) else Path.home() / "AppData" / "Local"
        return base / "biaxial_cu" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "biaxial_cu"
    return Path.home() / ".cache" / "biaxial_cu"


def is_inside(path, folder_real):
    """Whether path (after resolving links) is folder_real or lies under it."""
    return Path(os.path.realpath(path)).is_relative_to(folder_real)


def reading_options(include_drums, max_steps, meters="original"):
    """What decides the pieces read from a file: part of the cache's name and checked on read."""
    return {"include_drums": bool(include_drums), "max_steps": int(max_steps), "meters": meters,
            "reader": READER_VERSION, "mido": _mido_version()}


def _mido_version():
    try:
        return importlib.metadata.version("mido")
    except importlib.metadata.PackageNotFoundError:  # mido run from a source tree
        return "unknown"


@dataclasses.dataclass(frozen=True)
class CachePlace:
    """Where the cache of one folder and set of options lives."""

    directory: Path  # the cache folder
    folder: str  # the music folder's real path
    options: dict  # reading_options()

    @property
    def stem(self):
        key = json.dumps({"folder": self.folder, "options": self.options, "version": CACHE_VERSION},
                         sort_keys=True)
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(self.folder))[:40] or "root"
        return f"corpus-{name}-{digest}"

    @property
    def index_path(self):
        return self.directory / f"{self.stem}.json"

    def array_name_pattern(self):
        return re.compile(re.escape(self.stem) + r"-[0-9a-f]{16}\.npy")


# ----------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the index says about one file."""

    stamp: tuple  # (size, mtime_ns) of the file when it was read
    offset: int  # its piece's first step in the array (-1: skipped)
    steps: int  # its piece's length (0: skipped)
    skipped: str  # why it was skipped ('' for a piece)
    notes: tuple  # ((category, named, text), ...): the warnings reading it gave
    bars: tuple = ()  # meters "all": its meter changes ((step, bar length), ...), midi.meter_changes_of


@dataclasses.dataclass
class CorpusCache:
    """An opened cache: its index and its mapped array."""

    place: CachePlace
    array_name: str
    scanned_ns: int  # time.time_ns() before the files were looked at by the load that wrote it
    entries: dict  # key -> Entry
    steps: np.ndarray  # (N, 78, 2) uint8, read-only: mapped from the file (empty when N == 0)

    def trusts(self, key, stamp):
        """Whether the entry of key still describes a file of this stamp (see the module doc)."""
        entry = self.entries.get(key)
        return (entry is not None and stamp is not None and entry.stamp == stamp
                and stamp[1] < self.scanned_ns - RACY_NS)

    def piece(self, entry):
        """The piece of entry: a read-only view (steps, 78, 2) of the mapped array."""
        return self.steps[entry.offset:entry.offset + entry.steps]

    def live_steps(self, keys):
        return sum(self.entries[key].steps for key in keys)


def file_stamp(path):
    """(size, mtime_ns) of a regular file (after links), or None (missing, not regular, no
    access): such files are read again at every load, never trusted from the cache."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


def open_cache(place):
    """The cache at place, or None where there is none or it was written by another version or
    with other options (rebuilt without a word); CacheDamaged(why) for anything wrong in it.
    An array deleted between our reads of the index and of the array was replaced by another
    process with a new index: that one is read instead (a few times at most)."""
    for _ in range(OPEN_ATTEMPTS):
        text = _read_index(place)
        try:
            return None if text is None else _open_index(place, text)
        except _ArrayGone as gone:
            if _read_index(place) == text:  # deleted, not replaced: damage
                raise CacheDamaged(str(gone)) from None
    raise CacheDamaged(f"its array was replaced {OPEN_ATTEMPTS} times while being opened")


def _read_index(place):
    """The index file's bytes, or None where there is none."""
    try:
        return place.index_path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # no cache yet, or no cache folder
        return None
    except OSError as e:
        raise CacheDamaged(f"its index cannot be read: {type(e).__name__}: {e.strerror}") from None


def _open_index(place, text):
    """The cache that index text describes, checked through and through, its array mapped."""
    try:
        index = json.loads(text)
    except (ValueError, RecursionError):
        raise CacheDamaged("its index is not valid JSON") from None
    if not isinstance(index, dict) or index.get("format") != CACHE_FORMAT:
        raise CacheDamaged("its index is not a corpus cache index")
    if index.get("version") != CACHE_VERSION or index.get("options") != place.options:
        return None
    if index.get("folder") != place.folder:
        raise CacheDamaged(f"its index is of another folder ({index.get('folder')!r:.200})")
    array_name = index.get("array")
    if not isinstance(array_name, str) or not place.array_name_pattern().fullmatch(array_name):
        raise CacheDamaged(f"its index names no array of this cache ({array_name!r:.200})")
    n_steps = _index_int(index, "steps", 0)
    scanned_ns = _index_int(index, "scanned_ns", 0)
    files = index.get("files")
    if not isinstance(files, dict):
        raise CacheDamaged("its index has no table of files")
    entries = {key: _entry(key, value, n_steps) for key, value in files.items()}
    steps = _map_array(place.directory / array_name, n_steps)
    return CorpusCache(place, array_name, scanned_ns, entries, steps)


@contextlib.contextmanager
def build_lock(place):
    """Held while a process checks and rewrites the cache of place, so that processes that load
    one folder at once (MPI ranks) build its cache once: the others wait, then find it built.
    No lock where there is no fcntl (Windows) or the cache folder takes none: then each
    process builds its own, and the last index written wins."""
    fd = _locked_file(place)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _locked_file(place):
    """An open lock file of place, locked (waiting for another holder); None for no lock."""
    if fcntl is None:
        return None
    try:
        place.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(place.directory / f"{place.stem}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # a cache folder that cannot be written: writing it will say so
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    except BaseException:  # Ctrl-C while waiting
        os.close(fd)
        raise
    return fd


def _index_int(index, name, minimum):
    value = index.get(name)
    if not _is_int(value) or value < minimum:
        raise CacheDamaged(f"its index's {name} is not an int >= {minimum} ({value!r:.100})")
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(key, value, n_steps):
    """The Entry of one row of the index, checked: CacheDamaged for anything wrong."""
    def damaged(why):
        return CacheDamaged(f"the entry of {shown_path(key)} {why}")

    if not isinstance(value, dict):
        raise damaged("is not a table")
    size, mtime_ns = value.get("size"), value.get("mtime_ns")
    if not (_is_int(size) and size >= 0 and _is_int(mtime_ns)):
        raise damaged("has no valid size and mtime_ns")
    notes = value.get("warnings", [])
    if not isinstance(notes, list) or not all(
            isinstance(n, list) and len(n) == 3 and isinstance(n[0], str) and isinstance(n[1], bool)
            and isinstance(n[2], str) for n in notes):
        raise damaged("has malformed warnings")
    notes = tuple(tuple(n) for n in notes)
    if "skipped" in value:
        if not isinstance(value["skipped"], str) or "offset" in value:
            raise damaged("has a malformed skip reason")
        return Entry((size, mtime_ns), -1, 0, value["skipped"], notes)
    offset, steps = value.get("offset"), value.get("steps")
    if not (_is_int(offset) and _is_int(steps) and offset >= 0 and steps >= 0
            and offset + steps <= n_steps):
        raise damaged(f"has a piece outside the array ({offset!r:.30}, {steps!r:.30} of {n_steps} steps)")
    bars = value.get("bars", [])
    if not isinstance(bars, list) or not all(
            isinstance(b, list) and len(b) == 2 and _is_int(b[0]) and _is_int(b[1]) and 0 <= b[0] < max(steps, 1)
            and b[1] >= 1 for b in bars) or any(a[0] >= b[0] for a, b in zip(bars, bars[1:])):
        raise damaged("has malformed meter changes")
    return Entry((size, mtime_ns), offset, steps, "", notes, tuple(tuple(b) for b in bars))


def _map_array(path, n_steps):
    """The array file mapped read-only, (n_steps, 78, 2) uint8, after checking its header and its
    exact length (a truncated or grown file is damage)."""
    try:
        with open(path, "rb") as f:
            header_bytes = _read_header(f, path, n_steps)
            size = os.fstat(f.fileno()).st_size
            expected = header_bytes + n_steps * STEP_BYTES
            if size != expected:
                raise CacheDamaged(f"its array {path.name} has {size} bytes, not {expected} "
                                   "(truncated or overwritten)")
            if n_steps == 0:
                empty = np.zeros((0, N_NOTES, 2), np.uint8)
                empty.flags.writeable = False
                return empty
            mapped = np.memmap(f, dtype=np.uint8, mode="r", offset=header_bytes,
                               shape=(n_steps, N_NOTES, 2))
    except FileNotFoundError:
        raise _ArrayGone(f"its array {path.name} is missing") from None
    except OSError as e:
        raise CacheDamaged(f"its array {path.name} cannot be read: {type(e).__name__}: "
                           f"{e.strerror}") from None
    return mapped.view(np.ndarray)  # plain read-only views, kept alive by the map


def _read_header(f, path, n_steps):
    """The length of the .npy header of f, checked to be ours: uint8, C order, (n_steps, 78, 2)."""
    try:
        version = np.lib.format.read_magic(f)
        if version != (1, 0):
            raise ValueError(f"format version {version}")
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
    except (ValueError, EOFError) as e:
        raise CacheDamaged(f"its array {path.name} has no valid .npy header ({e})") from None
    if dtype != np.uint8 or fortran_order or shape != (n_steps, N_NOTES, 2):
        raise CacheDamaged(f"its array {path.name} holds {dtype} {shape}, not uint8 "
                           f"({n_steps}, {N_NOTES}, 2)")
    return f.tell()


# ----------------------------------------------------------------------------- writing


def write_cache(place, scanned_ns, old=None, kept=(), outcomes=()):
    """Write a new cache of place and return it opened: the entries and steps of the files kept
    from the cache old, then outcomes, an iterable of (key, stamp, piece or None, skip reason,
    notes, meter changes), each piece written as it comes (so memory holds one at a time). The array goes
    through a temporary file (deleted on any error or Ctrl-C), then the index; older arrays of
    the stem are deleted last. CacheUnwritable for any failure of the cache folder."""
    array_name = f"{place.stem}-{secrets.token_hex(8)}.npy"
    rows = {}  # key -> index row
    n_steps = 0

    def write(f):
        nonlocal n_steps
        f.write(bytes(HEADER_BYTES))  # the header, which holds the length, is written last
        if old is not None:
            n_steps = _copy_kept(old, kept, f, rows)
        for key, stamp, piece, skipped, notes, bars in outcomes:
            if piece is None:
                rows[key] = _row(Entry(stamp, -1, 0, skipped, tuple(notes)))
                continue
            piece = np.ascontiguousarray(piece, dtype=np.uint8)  # (T, 78, 2)
            f.write(memoryview(piece).cast("B"))
            rows[key] = _row(Entry(stamp, n_steps, piece.shape[0], "", tuple(notes), tuple(bars)))
            n_steps += piece.shape[0]
        f.seek(0)
        f.write(_header(n_steps))

    try:
        place.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(place.directory / array_name, write)
        _write_index(place, array_name, n_steps, scanned_ns, rows)
    except OSError as e:
        raise CacheUnwritable(_why(e)) from None
    _delete_stale(place, keep=array_name)
    try:
        cache = open_cache(place)
    except CacheDamaged as e:  # replaced under us by another process's broken write
        raise CacheUnwritable(f"the cache just written reads back damaged: {e}") from None
    if cache is None:
        raise CacheUnwritable("the cache just written is gone")
    return cache


def _copy_kept(old, keys, target, rows):
    """Copy the entries and steps of keys from the cache old into target (after its header), in
    runs of adjacent pieces read from old's file COPY_BYTES at a time; the steps written."""
    path = old.place.directory / old.array_name
    pieces = sorted((old.entries[key].offset, key) for key in keys if old.entries[key].offset >= 0)
    n_steps = 0
    try:
        with open(path, "rb") as source:
            header_bytes = _read_header(source, path, old.steps.shape[0])
            for start, stop, run in _runs(pieces, old.entries):
                source.seek(header_bytes + start * STEP_BYTES)
                _copy_bytes(source, target, (stop - start) * STEP_BYTES)
                for key in run:
                    moved = n_steps + old.entries[key].offset - start
                    rows[key] = _row(dataclasses.replace(old.entries[key], offset=moved))
                n_steps += stop - start
    except CacheDamaged as e:
        raise OSError(f"copying from {old.array_name}: {e}") from None
    for key in keys:
        if old.entries[key].offset < 0:
            rows[key] = _row(old.entries[key])
    return n_steps


def rewrite_index(old, keys, scanned_ns):
    """A cache of only keys' entries over the same array (files were removed, none changed)."""
    rows = {key: _row(old.entries[key]) for key in keys}
    try:
        _write_index(old.place, old.array_name, old.steps.shape[0], scanned_ns, rows)
    except OSError as e:
        raise CacheUnwritable(_why(e)) from None
    return CorpusCache(old.place, old.array_name, scanned_ns,
                       {key: old.entries[key] for key in keys}, old.steps)


def _row(entry):
    """The index row of entry (the inverse of _entry)."""
    size, mtime_ns = entry.stamp
    row = {"size": size, "mtime_ns": mtime_ns}
    if entry.offset < 0:
        row["skipped"] = entry.skipped
    else:
        row.update(offset=entry.offset, steps=entry.steps)
    if entry.notes:
        row["warnings"] = [list(note) for note in entry.notes]
    if entry.bars:
        row["bars"] = [list(change) for change in entry.bars]
    return row


def _runs(rows, entries):
    """(start, stop, keys) of the runs of adjacent pieces among rows ((offset, key), sorted)."""
    start = stop = None
    run = []
    for offset, key in rows:
        if run and offset != stop:
            yield start, stop, run
            run = []
        if not run:
            start = offset
        run.append(key)
        stop = offset + entries[key].steps
    if run:
        yield start, stop, run


def _copy_bytes(source, target, n_bytes):
    while n_bytes > 0:
        chunk = source.read(min(n_bytes, COPY_BYTES))
        if not chunk:
            raise CacheDamaged("the old array ended early")
        target.write(chunk)
        n_bytes -= len(chunk)


def _header(n_steps):
    """The .npy 1.0 header of a (n_steps, 78, 2) uint8 array, exactly HEADER_BYTES long."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|u1", "fortran_order": False, "shape": (n_steps, N_NOTES, 2)})
    header = buffer.getvalue()
    if len(header) != HEADER_BYTES:  # numpy pads to 64 bytes: 128 holds any shape we write
        raise OSError(f"unexpected .npy header length {len(header)}")
    return header


def _write_index(place, array_name, n_steps, scanned_ns, rows):
    index = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "options": place.options,
             "folder": place.folder, "array": array_name, "steps": n_steps,
             "scanned_ns": scanned_ns, "files": dict(sorted(rows.items()))}
    text = json.dumps(index, separators=(",", ":"))
    write_atomically(place.index_path, lambda f: f.write(text.encode("utf-8", "surrogatepass")))


def _delete_stale(place, keep):
    """Delete this stem's arrays other than keep, and its temporary files left by killed runs.
    A process that still maps a deleted array keeps reading it (POSIX); where the system
    refuses to delete a mapped file (Windows), it is left for the next write."""
    pattern = place.array_name_pattern()
    now = time.time_ns()
    try:
        names = os.listdir(place.directory)
    except OSError:
        return
    for name in names:
        path = place.directory / name
        stale_tmp = name.startswith(f".{place.stem}-") and name.endswith(".tmp")
        try:
            if (pattern.fullmatch(name) and name != keep) or (
                    stale_tmp and now - os.stat(path).st_mtime_ns > STALE_TMP_NS):
                os.unlink(path)
        except OSError:
            pass


def _why(error):
    text = getattr(error, "strerror", None) or str(error)
    name = getattr(error, "filename", None)
    return f"{type(error).__name__}: {text}" + (f": {shown_path(name)}" if name else "")

