"""Checkpoint files: one .npz of plain arrays (no pickle), written atomically.

Members: `param/<name>`, `adadelta/Eg/<name>`, `adadelta/Ex/<name>` and `meta`, UTF-8 JSON bytes
with the format, version, config, step count and the random generator's state. What the arrays
and the config mean is the Model's business; this module reads, writes and checks the file.
"""
import json
import os
import stat
import zipfile
import zlib

import numpy as np

from .common import write_atomically
from .errors import CheckpointError
from .params import OPTIMISER_STATES

FORMAT = "biaxial_cu.checkpoint"
VERSION = 1
META_KEYS = ("config", "step", "rng_state")
MAX_HEADER = 10_000  # bytes of a member's .npy header, numpy's own limit
MAX_STEP = 2**63 - 1  # a step count beyond int64 is a damaged file


def write_checkpoint(path, params, opt, meta):
    """params {name: host array}, opt {"Eg/name": host array}, meta (JSON-able dict) -> path,
    atomically (common.write_atomically)."""
    path = os.fspath(path)
    arrays = {f"param/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"adadelta/{k}": np.asarray(v) for k, v in opt.items()})
    meta = {"format": FORMAT, "version": VERSION, **meta}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    write_atomically(path, lambda f: np.savez(f, **arrays))


def read_checkpoint(path):
    """({member: array}, meta dict) of a checkpoint file, or CheckpointError saying why (one line,
    in our words: a damaged file is never met with a traceback or a hint to unpickle it)."""
    path = os.fspath(path)
    _check_zip(path)
    try:
        _check_member_sizes(path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {}
            for k in z.files:
                try:
                    arrays[k] = z[k]
                except ValueError:  # numpy's text suggests allow_pickle: never ours
                    raise CheckpointError(f"{path}: member {k!r} holds Python objects, not a plain "
                                          "array; a biaxial_cu checkpoint never does (damaged or "
                                          "foreign file, refused)") from None
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError,
            AttributeError) as e:
        raise CheckpointError(f"{path}: not a readable biaxial_cu checkpoint "
                              f"({type(e).__name__}: {_our_words(e)})") from None
    except MemoryError:  # a size no member check foresaw (a member compressed very well)
        raise CheckpointError(f"{path}: a member of the checkpoint does not fit in memory "
                              "(damaged file?)") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{path}: not a biaxial_cu checkpoint (no 'meta' entry)")
    raw = arrays["meta"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: unreadable 'meta' entry (a {raw.dtype} array of shape "
                              f"{raw.shape}, not bytes)")
    try:
        meta = json.loads(raw.tobytes().decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: unreadable 'meta' entry ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a biaxial_cu checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')!r}; this biaxial_cu "
                              f"reads version {VERSION}")
    for key in META_KEYS:
        if key not in meta:
            raise CheckpointError(f"{path}: checkpoint meta lacks {key!r}")
    step = meta["step"]
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise CheckpointError(f"{path}: bad step count in checkpoint meta ({str(step)[:40]}; "
                              f"expected a whole number from 0 to {MAX_STEP})")
    if not isinstance(meta["config"], dict):
        raise CheckpointError(f"{path}: bad config in checkpoint (not a JSON object)")
    return arrays, meta


def _check_zip(path):
    """A checkpoint is a zip archive (.npz): anything else is refused before numpy reads it (numpy
    would try to unpickle a file that is neither .npy nor .npz)."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise CheckpointError(f"{path}: not a regular file, not a checkpoint")
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({type(e).__name__}: "
                              f"{e.strerror})") from None
    if head[:2] != b"PK":
        what = "empty" if not head else "not a zip archive"
        raise CheckpointError(f"{path}: not a biaxial_cu checkpoint ({what}; a checkpoint is an "
                              ".npz written by Model.save)")


def _check_member_sizes(path):
    """Every .npy member's header against the member's size in the zip: a header that claims
    more (or fewer) bytes than the member holds is a damaged file, refused before numpy would
    try to allocate what it claims (a shape of (10**12,) would be a MemoryError)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            with archive.open(info) as member:
                try:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = read_header(member, max_header_size=MAX_HEADER)
                except (ValueError, SyntaxError, EOFError, TypeError) as e:
                    raise CheckpointError(f"{path}: member {key!r} has an unreadable array header "
                                          f"({type(e).__name__}: {_our_words(e)})") from None
                header = member.tell()
            if dtype.hasobject:
                continue  # refused with its own message when read
            claimed = dtype.itemsize
            for n in shape:
                claimed *= int(n)
            if claimed != info.file_size - header:
                raise CheckpointError(f"{path}: member {key!r} claims shape {tuple(shape)} of "
                                      f"{dtype} ({claimed} bytes) but holds "
                                      f"{info.file_size - header} bytes (damaged file, refused)")


def _our_words(error):
    text = " ".join(str(error).split())
    return "refused" if "pickle" in text.lower() else text[:200]


def check_state_arrays(path, arrays, shapes):
    """The checkpoint's arrays are exactly the parameters and Adadelta state of shapes, in float;
    CheckpointError saying what is not."""
    expected = {f"param/{n}" for n in shapes} | {f"adadelta/{k}/{n}" for k in OPTIMISER_STATES for n in shapes}
    found = set(arrays) - {"meta"}
    if found != expected:
        missing, extra = sorted(expected - found), sorted(found - expected)
        raise CheckpointError(f"{path}: arrays do not match the config (missing {missing[:5]}, "
                              f"unexpected {extra[:5]})")
    for key in sorted(expected):
        name = key.split("/")[-1]
        if arrays[key].shape != shapes[name]:
            raise CheckpointError(f"{path}: {key} has shape {arrays[key].shape}, the config "
                                  f"needs {shapes[name]}")
        if not np.issubdtype(arrays[key].dtype, np.floating):
            raise CheckpointError(f"{path}: {key} has dtype {arrays[key].dtype}, not float")


def state_arrays(path, arrays, shapes, dtype):
    """(params, opt) of dtype from a checkpoint's arrays, checked against the config's shapes."""
    check_state_arrays(path, arrays, shapes)
    params = {n: arrays[f"param/{n}"].astype(dtype) for n in shapes}
    opt = {f"{k}/{n}": arrays[f"adadelta/{k}/{n}"].astype(dtype) for k in OPTIMISER_STATES for n in shapes}
    return params, opt
