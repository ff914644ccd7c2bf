"""Checkpoint files: one .npz of plain arrays (no pickle), written atomically.

Members: `param/<name>`, `adadelta/Eg/<name>`, `adadelta/Ex/<name>` and `meta`, UTF-8 JSON bytes
with the format, version, config, step count and the random generator's state. What the arrays
and the config mean is the Model's business; this module reads, writes and checks the file.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import CheckpointError
from .params import OPTIMISER_STATES

FORMAT = "biaxial_cu.checkpoint"
VERSION = 1
META_KEYS = ("config", "step", "rng_state")


def write_checkpoint(path, params, opt, meta):
    """params {name: host array}, opt {"Eg/name": host array}, meta (JSON-able dict) -> path,
    through a temporary file in the same folder and a rename."""
    path = os.fspath(path)
    arrays = {f"param/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"adadelta/{k}": np.asarray(v) for k, v in opt.items()})
    meta = {"format": FORMAT, "version": VERSION, **meta}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_checkpoint(path):
    """({member: array}, meta dict) of a checkpoint file, or CheckpointError saying why."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable biaxial_cu checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(arrays, dict) or "meta" not in arrays:
        raise CheckpointError(f"{path}: not a biaxial_cu checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(arrays["meta"].astype(np.uint8).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable 'meta' entry ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a biaxial_cu checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')!r}; this biaxial_cu "
                              f"reads version {VERSION}")
    for key in META_KEYS:
        if key not in meta:
            raise CheckpointError(f"{path}: checkpoint meta lacks {key!r}")
    return arrays, meta


def state_arrays(path, arrays, shapes, dtype):
    """(params, opt) of dtype from a checkpoint's arrays, checked against the config's shapes."""
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
    params = {n: arrays[f"param/{n}"].astype(dtype) for n in shapes}
    opt = {f"{k}/{n}": arrays[f"adadelta/{k}/{n}"].astype(dtype) for k in OPTIMISER_STATES for n in shapes}
    return params, opt
