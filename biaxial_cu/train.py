"""python -m biaxial_cu.train [MUSIC_DIR]: train the biaxial model, with progress, validation,
checkpoints that resume exactly, samples to look at, and clear errors.

A run folder (--out) belongs to one run: run.json records its settings, log.jsonl its rows (one
whole line each), latest.npz and checkpoint_NNNNNN.npz its checkpoints, each with a
NAME.losses.json sidecar holding the train losses since the last log row. `--resume FOLDER`
(or a checkpoint in it) continues the run with its recorded settings: the parameters and the log
rows are those of a run that never stopped. Batch i is drawn from a generator seeded with
(seed, i), and dropout masks come from the model's own generator, which checkpoints carry. Without
latest.npz it continues from the newest checkpoint_NNNNNN.npz (and says so); a folder without
run.json (an older version's) takes the checkpoint's model, the command line's flags and defaults
for the rest (and says which). A run folder and its MUSIC_DIR never lie inside one another: the
samples would be read back as music.

Under an MPI launcher (`mpirun -n N python -m biaxial_cu.train ...`) the N ranks train one model
on the same global batches (distributed.py): every rank checks and loads what it needs, all agree
before anything is written, rank 0 alone writes the run folder, validation batches are shared out,
and a Ctrl-C, a NaN or an error on any rank stops every rank at the same batch.

For tests, BIAXIAL_CU_INJECT_NAN_AT=i poisons a parameter after batch i,
BIAXIAL_CU_INTERRUPT_AT=i sends this process SIGINT (a Ctrl-C) during batch i and
BIAXIAL_CU_KILL_AT=i kills it (SIGKILL) and BIAXIAL_CU_STOP_AT=i freezes it (SIGSTOP) during batch
i; with BIAXIAL_CU_FAULT_RANK=r only rank r does so.
"""
from . import cli

if __name__ == "__main__":  # Ctrl-C while the imports below run: one line, no traceback
    cli.quiet_start()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

from . import board as boards  # noqa: E402
from .board import RunBoard, gradient_norms  # noqa: E402
from .checkpoint import read_checkpoint  # noqa: E402
from .cli import UsageError, float_in, int_at_least, int_in  # noqa: E402
from .common import METER_MODES, N_NOTES, summarize, write_atomically  # noqa: E402
from .data import load_pieces_report, sample_batch, shipped_corpus_dir, split_pieces  # noqa: E402
from .distributed import DistributedError, world  # noqa: E402
from .errors import CheckpointError  # noqa: E402
from .generate import MAX_STEPS, compose, seed_from_pieces  # noqa: E402
from .midi import write_state_matrix  # noqa: E402
from .model import Model, choose_backend  # noqa: E402
from .params import param_shapes  # noqa: E402
from .viz import piano_roll_png, render_wav, training_curve_png  # noqa: E402

EXIT_USAGE, EXIT_INTERRUPTED, EXIT_NAN = cli.EXIT_USAGE, cli.EXIT_INTERRUPTED, 3
RUN_FILE, LOG_FILE, LATEST = "run.json", "log.jsonl", "latest.npz"
RUN_VERSION = 1
# A model whose parameters, optimiser state and gradients (4 float32 copies) plus one batch's
# activations (ACTIVATION_FLOATS floats per unit, note and step) exceed this is refused before any
# work: on the cuda backend MAX_MODEL_BYTES, on the numpy backend this machine's memory as well.
MAX_MODEL_BYTES = 256 * 2 ** 30
ACTIVATION_FLOATS = 6
# Caps on counts, checked at parse time: beyond them a run would hang or fail late.
MAX_BATCHES = 10 ** 9  # --batches and the intervals
MAX_VALIDATION_BATCHES = 10000
MAX_WORKERS = 1024  # --workers

# Recorded settings: key (the argparse dest) -> (flag, default). A resumed run takes them from
# run.json; given on the command line they must agree, except CHANGEABLE ones.
SETTINGS = {
    "music_dir": ("MUSIC_DIR", None), "t_layers": ("--t-layers", [300, 300]),
    "p_layers": ("--p-layers", [100, 50]), "dropout": ("--dropout", 0.5),
    "cell_activation": ("--cell-activation", "identity"), "seed": ("--seed", 0),
    "batch_size": ("--batch-size", 10), "seq_len": ("--seq-len", 128),
    "validation_fraction": ("--validation-fraction", 0.1), "validation_batches": ("--validation-batches", 4),
    "backend": ("--backend", "auto"), "tf32": ("--tf32", False), "log_every": ("--log-every", 100),
    "sample_every": ("--sample-every", 500), "early_sample_every": ("--early-sample-every", 100),
    "early_until": ("--early-until", 1000), "sample_steps": ("--sample-steps", 256),
    "batches": ("--batches", 10000), "meters": ("--meters", "original"),
}
MODEL_SETTINGS = {"t_layers": "t_layer_sizes", "p_layers": "p_layer_sizes", "dropout": "dropout",
                  "cell_activation": "cell_activation", "tf32": "tf32", "meters": "meters"}
CHANGEABLE = {"batches": "train further (or stop sooner)", "backend": "move a run to another machine"}
RUN_FILES = ("run.json", "log.jsonl", "curve.png", "latest.npz", "latest.losses.json", "checkpoint_*.npz",
             "checkpoint_*.losses.json", "sample_*.mid", "sample_*.png")
BOARD_DIR = "tensorboard"  # the run's TensorBoard log (board.py), when written


class TrainError(UsageError):
    """A problem the user can fix: printed as one line, exit code 2."""


def parse_sizes(text):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 300,300, got {text!r}") from None
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def build_parser():
    ap = cli.ArgumentParser(prog="python -m biaxial_cu.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("music_dir", nargs="?", help="folder of MIDI files (default: the shipped corpus)")
    ap.add_argument("--out", default=None, help="output folder, one run's (default runs/biaxial)")
    ap.add_argument("--resume", metavar="RUN", help="continue the run in this folder (or from this checkpoint "
                    "in it) with its recorded settings; flags that contradict them are refused")
    ap.add_argument("--force", action="store_true", help="start a new run in a folder that holds another: "
                    "its files are moved to OUT/previous-N first (nothing is deleted)")
    ap.add_argument("--batches", type=int_in(1, MAX_BATCHES), default=None,
                    help="train until this many batches (default 10000); may be changed on --resume")
    ap.add_argument("--batch-size", type=int_at_least(1), default=None, help="default 10")
    ap.add_argument("--seq-len", type=int_at_least(2), default=None, help="steps per segment (default 128)")
    ap.add_argument("--t-layers", type=parse_sizes, default=None, help="time layer sizes (300,300)")
    ap.add_argument("--p-layers", type=parse_sizes, default=None, help="pitch layer sizes (100,50)")
    ap.add_argument("--dropout", type=float_in(0, 1, high_open=True), default=None, help="in [0, 1) (0.5)")
    ap.add_argument("--cell-activation", choices=["identity", "tanh"], default=None)
    ap.add_argument("--backend", choices=["auto", "cuda", "numpy"], default=None,
                    help="default auto; may be changed on --resume")
    ap.add_argument("--tf32", action="store_true", default=None,
                    help="cuda backend: matrix products on TF32 tensor cores (as cuDNN's default), "
                         "the rest fp32; recorded in the checkpoint (a resumed run keeps it)")
    ap.add_argument("--meters", choices=METER_MODES, default=None,
                    help="how time signatures are read: original (default: a meter other than 2/x or 4/x ends "
                         "the piece, beats counted from each segment's start) or all (every meter; segments "
                         "start on bar lines and beats count from them); recorded in the checkpoint")
    ap.add_argument("--seed", type=int_at_least(0), default=None, help="default 0")
    ap.add_argument("--validation-fraction", type=float_in(0, 1, high_open=True), default=None,
                    help="share of the pieces held out, in [0, 1) (0.1)")
    ap.add_argument("--validation-batches", type=int_in(0, MAX_VALIDATION_BATCHES), default=None,
                    help="held-out batches per log row (default 4; 0 = no validation)")
    ap.add_argument("--log-every", type=int_in(1, MAX_BATCHES), default=None, help="log row interval (100)")
    ap.add_argument("--sample-every", type=int_in(0, MAX_BATCHES), default=None,
                    help="sample + checkpoint interval (500; 0 = only at the end)")
    ap.add_argument("--early-sample-every", type=int_in(0, MAX_BATCHES), default=None,
                    help="the interval until --early-until (100; 0 = --sample-every throughout)")
    ap.add_argument("--early-until", type=int_in(0, MAX_BATCHES), default=None,
                    help="last batch of the early interval (1000; 0 = no early interval)")
    ap.add_argument("--sample-steps", type=int_in(0, MAX_STEPS), default=None,
                    help="length of samples written (256; 0 = write no samples)")
    ap.add_argument("--workers", type=int_in(1, MAX_WORKERS), default=None,
                    help="processes reading MIDI files (default: every core)")
    cache = ap.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", metavar="DIR",
                       help="the corpus cache's folder (default $XDG_CACHE_HOME/biaxial_cu, else ~/.cache/biaxial_cu); "
                            "never inside MUSIC_DIR")
    cache.add_argument("--no-cache", action="store_true", help="read every MIDI file, write no corpus cache")
    shown = ap.add_mutually_exclusive_group()
    shown.add_argument("--tensorboard", action="store_true", default=None,
                       help=f"write a TensorBoard log to OUT/{BOARD_DIR} (the default where the tensorboard extra "
                            f"is installed: {boards.INSTALL})")
    shown.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", help="no TensorBoard log")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


# ----------------------------------------------------------------------------- the run folder


def write_json_atomic(path, value):
    write_atomically(path, lambda f: f.write(json.dumps(value, indent=1) + "\n"), binary=False)


def sidecar(checkpoint):
    """Where a checkpoint's train losses since the last log row are kept."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".losses.json")


def run_markers(folder):
    """The files that say folder holds a run."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = [n for n in (RUN_FILE, LATEST, LOG_FILE) if (folder / n).exists()]
    return names + sorted(p.name for p in folder.glob("checkpoint_*.npz"))[:1]


def resume_hint(folder):
    """The command that resumes the run in folder (--resume=PATH: a folder named -x stays its value)."""
    return f"python -m biaxial_cu.train --resume={shlex.quote(str(folder))}"


def numbered_checkpoints(folder):
    """The folder's checkpoint_N.npz files, in the order of N."""
    found = []
    for path in Path(folder).glob("checkpoint_*.npz"):
        n = path.name[len("checkpoint_"):-len(".npz")]
        if n.isascii() and n.isdigit() and path.is_file():
            found.append((int(n), path))
    return [path for _, path in sorted(found)]


def locate_resume(text):
    """(run folder, checkpoint or None, whether the checkpoint stands in for a missing latest.npz)
    of a --resume argument."""
    path = Path(text)
    if path.is_dir():
        if not run_markers(path):
            raise TrainError(f"--resume {text}: the folder holds no run (no {RUN_FILE} or {LATEST})")
        if (path / LATEST).is_file():
            return path, path / LATEST, False
        found = numbered_checkpoints(path)
        return path, (found[-1] if found else None), bool(found)
    if path.is_file():
        return path.parent, path, False
    raise TrainError(f"--resume {text}: no such run folder or checkpoint")


def normal(value):
    return list(value) if isinstance(value, tuple) else value


def shown(key, value):
    if key == "tf32":
        return "on" if value else "off"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def settings(a, recorded, where):
    """(the run's settings, the keys that took their defaults): recorded ones (a resumed run), else
    the command line's, else defaults."""
    s, defaulted = {}, []
    for key, (flag, default) in SETTINGS.items():
        given = normal(getattr(a, key))
        if key == "music_dir" and given is not None:
            given = os.path.abspath(given)
        if key in recorded and recorded[key] is not None:
            have = recorded[key]
            same = given is None or (os.path.realpath(given) == os.path.realpath(have)
                                     if key == "music_dir" else given == have)
            if not same and key not in CHANGEABLE:
                raise TrainError(f"{flag} {shown(key, given)} contradicts this run's {shown(key, have)} "
                                 f"(recorded in {where}); leave {flag} out to resume the run, or start a "
                                 f"new one with another --out or --force")
            s[key] = have if given is None else given
        else:
            s[key] = default if given is None else given
            if given is None:
                defaulted.append(key)
    if s["music_dir"] is None:
        s["music_dir"] = str(shipped_corpus_dir())
    return SimpleNamespace(**s), defaulted


def defaults_shown(keys):
    return ", ".join("MUSIC_DIR (the shipped corpus)" if key == "music_dir" else
                     f"{SETTINGS[key][0]} {shown(key, SETTINGS[key][1])}" for key in keys)


def recorded_value(action, key, value, where):
    """A setting recorded in run.json, read as its option reads it; TrainError naming it when bad."""
    def bad(why):
        raise TrainError(f"{where} is damaged: its {key} is {json.dumps(value)[:40]} ({why}); repair "
                         f"it, or start a new run with --force")

    if key == "tf32":
        if not isinstance(value, bool):
            bad("expected true or false")
        return value
    if key == "music_dir":
        if not isinstance(value, str) or not value:
            bad("expected a folder name")
        return value
    if action.type is parse_sizes and isinstance(value, list) and value \
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        text = ",".join(map(str, value))
    elif action.choices is not None and isinstance(value, str):
        text = value
    elif action.type is not None and action.type is not parse_sizes and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        text = str(value)
    else:
        bad("expected layer sizes like [300, 300]" if action.type is parse_sizes else
            f"expected one of {', '.join(action.choices)}" if action.choices is not None else "expected a number")
    try:
        value = action.type(text) if action.type is not None else text
    except argparse.ArgumentTypeError as e:
        bad(str(e))
    if action.choices is not None and value not in action.choices:
        bad(f"expected one of {', '.join(action.choices)}")
    return normal(value)


def check_recorded(recorded, where):
    """The recorded settings (those this version knows), each checked as its option checks it."""
    actions = {action.dest: action for action in build_parser()._actions}
    return {key: recorded_value(actions[key], key, value, where) for key, value in recorded.items()
            if key in SETTINGS and value is not None}


def read_recorded(folder, checkpoint):
    """(recorded settings, where they come from) of a run to resume."""
    path = folder / RUN_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            recorded = data["settings"]
            if not isinstance(recorded, dict):
                raise TypeError("its settings are not a mapping")
            nulls = [key for key, value in recorded.items()
                     if value is None and key in SETTINGS and SETTINGS[key][1] is not None]
            if nulls:
                raise TrainError(f"{path} is damaged: its {nulls[0]} is null; start a new run with --force")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise TrainError(f"{path} cannot be read ({e}); start a new run with --force") from None
        return check_recorded(recorded, path), path
    if checkpoint is None:
        raise TrainError(f"{folder} holds no {RUN_FILE} and no {LATEST} to resume")
    _, meta = read_checkpoint(checkpoint)  # a run from before run.json: the model's own settings
    config = meta.get("config", {})
    return check_recorded({key: config.get(name) for key, name in MODEL_SETTINGS.items()}, checkpoint), checkpoint


def model_bytes(t_layers, p_layers, batch_size, seq_len):
    """An estimate of the memory training needs (bytes): see MAX_MODEL_BYTES."""
    params = sum(math.prod(shape) for shape in param_shapes(t_layers, p_layers).values())
    units = sum(t_layers) + sum(p_layers)
    return 4 * 4 * params + 4 * ACTIVATION_FLOATS * batch_size * (seq_len - 1) * N_NOTES * units


def memory_limit(backend):
    """(bytes, what they are) a model on this backend may need at most."""
    if backend == "numpy":
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            if ram < MAX_MODEL_BYTES:
                return ram, "this machine's memory"
        except (ValueError, OSError, AttributeError):
            pass
    return MAX_MODEL_BYTES, "the limit"


def check_size(s):
    limit, what = memory_limit(choose_backend(s.backend, "float32"))
    need = model_bytes(s.t_layers, s.p_layers, s.batch_size, s.seq_len)
    if need > limit:
        raise TrainError(f"layers time {shown('t', s.t_layers)} pitch {shown('p', s.p_layers)} with "
                         f"--batch-size {s.batch_size} --seq-len {s.seq_len} would need about "
                         f"{need / 2 ** 30:.0f} GiB (parameters, optimiser state, gradients and one "
                         f"batch's activations); {what} is {limit / 2 ** 30:.0f} GiB")


def make_model(s, checkpoint):
    try:
        if checkpoint is not None:
            model = Model.load(checkpoint, backend=s.backend, tf32=bool(s.tf32))
            for key, name in MODEL_SETTINGS.items():
                if key != "tf32" and model.config[name] != getattr(s, key):
                    raise TrainError(f"{checkpoint} was trained with {name}={model.config[name]}, "
                                     f"not the run's {shown(key, getattr(s, key))}")
            return model
        return Model(s.t_layers, s.p_layers, s.dropout, s.cell_activation, backend=s.backend, seed=s.seed,
                     tf32=bool(s.tf32), meters=s.meters)
    except MemoryError:
        raise TrainError(f"not enough memory for a model with layers time {shown('t', s.t_layers)} "
                         f"pitch {shown('p', s.p_layers)}") from None


def check_apart(out, music_dir, resumed):
    """The run's folder and its music share no file: samples written into the music would be read
    as music to train on (by this run when it resumes)."""
    o, m = Path(os.path.realpath(out)), Path(os.path.realpath(music_dir))
    name = f"the run folder {out}" if resumed else f"--out {out}"
    if o == m or m in o.parents:
        raise TrainError(f"{name} is {'' if o == m else 'inside '}MUSIC_DIR {music_dir}: its samples would be "
                         f"read as music to train on; write the run outside the music folder")
    if o in m.parents:
        raise TrainError(f"MUSIC_DIR {music_dir} is inside {name}: the run's samples would be read as music "
                         f"to train on; write the run outside the music folder")


def load_music(folder, min_steps, reading):
    """The LoadReport of the music folder; reading: load_pieces_report's workers, cache, cache_dir."""
    folder = Path(folder)
    if not folder.exists():
        raise TrainError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise TrainError(f"not a folder: {folder}")
    print(f"loading {folder} ...", flush=True)
    try:
        report = load_pieces_report(folder, min_steps=min_steps, **reading)  # workers, cache, meters
    except ValueError as e:  # a --cache-dir inside the music folder
        raise TrainError(str(e)) from None
    if not report.pieces:
        why = summarize(f"{name}: {reason}" for name, reason in report.skipped.items())
        raise TrainError(f"no usable pieces in {folder}" + (f" ({why})" if why else " (no MIDI files)"))
    return report


def move_aside(out):
    """Move an earlier run's files to out/previous-N; returns that folder (None: nothing to move)."""
    files = sorted({p for pattern in RUN_FILES for p in out.glob(pattern) if p.is_file()})
    files += [out / BOARD_DIR] if (out / BOARD_DIR).is_dir() else []
    if not files:
        return None
    n = 1
    while (out / f"previous-{n}").exists():
        n += 1
    aside = out / f"previous-{n}"
    aside.mkdir()
    for p in files:
        os.replace(p, aside / p.name)
    return aside


def is_number(value, *, none=False, finite=True):
    if value is None:
        return none
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (math.isfinite(value) or not finite)


def is_row(row):
    """A log row as this version writes it: batch a positive int, train_loss a finite number (or
    null), val_loss a number or null, seconds a finite number."""
    return (isinstance(row, dict) and isinstance(row.get("batch"), int) and not isinstance(row["batch"], bool)
            and row["batch"] >= 1 and "train_loss" in row and is_number(row["train_loss"], none=True)
            and is_number(row.get("val_loss"), none=True, finite=False) and is_number(row.get("seconds")))


def resume_log(path, step):
    """Keep the rows up to step (the checkpoint's); cut a torn last line with one warning, and leave
    out lines that are not log rows with another. Returns the seconds of the last row kept (0.0
    without one)."""
    if not path.is_file():
        return 0.0
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    rows, bad = [], []
    for line in lines:
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except (ValueError, RecursionError):
            bad.append(line)
    if not torn and bad and bad[-1] is lines[-1]:
        torn, bad = bad[-1], bad[:-1]
    kept, later = [], 0
    for row in rows:
        if is_row(row):
            if row["batch"] <= step:
                kept.append(row)
            else:
                later += 1
        else:  # a damaged row (a batch that is not a count, a train loss that is not a number, ...)
            bad.append(row)
    if torn:
        print(f"warning: {path}: cut off a torn last line (the run stopped while writing it)", file=sys.stderr)
    if bad:
        print(f"warning: {path}: left out {len(bad)} line(s) that are not log rows", file=sys.stderr)
    if later:
        print(f"{path}: cut {later} row(s) after batch {step}, the checkpoint's; "
              f"this run writes them again", flush=True)
    if torn or bad or later:
        write_atomically(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in kept)), binary=False)
    return float(kept[-1]["seconds"]) if kept else 0.0


def resume_losses(checkpoint, step):
    """The train losses since the last log row, kept beside the checkpoint, and the seconds."""
    path = sidecar(checkpoint)
    try:
        data = json.loads(path.read_text())
        if data["step"] == step:
            return [float(x) for x in data["losses"]], float(data["seconds"])
        why = f"it is for batch {data['step']}"
    except FileNotFoundError:
        why = "it is missing"
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"it cannot be read ({e})"
    print(f"warning: {path}: {why}; the next log row's train loss averages only the batches after "
          f"batch {step}", file=sys.stderr)
    return [], None


# ----------------------------------------------------------------------------- training


def write_sample(model, pieces, bars, out, batch, s):
    """Compose the sample of batch (its own generator: (seed, 1, batch)) from the first step of a
    training segment (with meters "all" a bar line), in 4/4 from there; write its MIDI and PNG;
    returns the piece (steps + 1, 78, 2)."""
    rng = np.random.default_rng([s.seed, 1, batch])
    piece = compose(model, seed_from_pieces(pieces, rng, seq_len=s.seq_len, bars=bars), s.sample_steps, rng=rng)
    write_state_matrix(piece, out / f"sample_{batch:06d}.mid")
    piano_roll_png(piece, out / f"sample_{batch:06d}.png", title=f"sample after batch {batch}")
    return piece


def board_sample(board, model, out, batch, piece):
    """The sample's piano roll and audio (where a synthesizer renders it: said once otherwise),
    the gradient norms of the last batch before clipping, and the parameters' histograms."""
    if piece is not None:
        with tempfile.TemporaryDirectory() as folder:
            try:
                wav = render_wav(out / f"sample_{batch:06d}.mid", Path(folder) / "sample.wav")
            except (subprocess.CalledProcessError, OSError) as e:  # audio is a preview: training goes on
                why = f"exit {e.returncode}" if isinstance(e, subprocess.CalledProcessError) else str(e)
                print(f"warning: no audio for the sample of batch {batch}: fluidsynth failed ({why})",
                      file=sys.stderr, flush=True)
                wav = None
            board.sample(batch, piece, wav)
    shapes = param_shapes(model.config["t_layer_sizes"], model.config["p_layer_sizes"])
    board.gradients(batch, *gradient_norms(model.gradient_sq_norms(), shapes))
    board.histograms(batch, model.params)
    board.flush()


def save_checkpoint(model, out, losses, seconds):
    for path in (out / f"checkpoint_{model.step:06d}.npz", out / LATEST):
        model.save(path)
        write_json_atomic(sidecar(path), {"step": model.step, "losses": losses, "seconds": seconds})
    return out / LATEST


def checkpoint_due(batch, s):
    if batch == s.batches:
        return True
    early = s.early_until and s.early_sample_every and batch <= s.early_until
    every = s.early_sample_every if early else s.sample_every
    return bool(every) and batch % every == 0


def prepare(a, ranks):
    """Everything checked and made before a file is written but the music (load_split):
    (settings, model, out, checkpoint, notes: the warnings to print once the run starts)."""
    notes = []
    if a.resume:
        out, checkpoint, instead = locate_resume(a.resume)
        if a.out is not None and os.path.realpath(a.out) != os.path.realpath(out):
            raise TrainError(f"--out {a.out} is not the folder of --resume {a.resume} ({out}); "
                             f"a resumed run writes into its own folder (leave --out out)")
        recorded, where = read_recorded(out, checkpoint)
        if instead:
            notes.append(f"warning: {out / LATEST} is missing; resuming from {checkpoint}, the newest "
                         f"checkpoint in {out}")
    else:
        out, checkpoint, recorded, where = Path("runs/biaxial" if a.out is None else a.out), None, {}, None
        markers = run_markers(out)
        if markers and not a.force:
            raise TrainError(f"{out} holds another run ({', '.join(markers)}); continue it with "
                             f"{resume_hint(out)}, or start a new run there with --force (moves its "
                             f"files to {out}/previous-N)")
    cli.check_output_folder(out)
    s, defaulted = settings(a, recorded, where)
    check_apart(out, s.music_dir, bool(a.resume))
    if a.resume and defaulted:
        said = (f"{out} holds no {RUN_FILE} (a run from an older version?): its settings come from the "
                f"command line and the model's from {where}" if where != out / RUN_FILE
                else f"{where} does not record every setting")
        notes.append(f"warning: {said}; took the defaults {defaults_shown(defaulted)}; {RUN_FILE} records "
                     f"them now")
    check_size(s)
    try:
        ranks.share(s.batch_size)
    except ValueError as e:
        raise TrainError(str(e)) from None
    if choose_backend(s.backend, "float32") == "cuda":
        ranks.choose_gpu()
    model = make_model(s, checkpoint)
    if checkpoint is not None:
        if not model.parameters_finite():
            raise TrainError(f"{checkpoint} holds NaN or Inf parameters; resume from an earlier "
                             f"checkpoint_*.npz in {out}, or start a new run with --force")
        if model.step > s.batches:
            raise TrainError(f"{checkpoint} is at batch {model.step}, past --batches {s.batches}; give "
                             f"--batches {model.step} or more to train further")
    return s, model, out, checkpoint, notes


def load_split(s, reading):
    """(training pieces, held-out pieces, bars: the pieces' meter changes with meters "all",
    else None) of the run's music folder, checked."""
    report = load_music(s.music_dir, s.seq_len, reading)
    train_pieces, valid_pieces = split_pieces(report.pieces, s.validation_fraction, seed=s.seed)
    print(report.summary() + f"; {len(train_pieces)} for training, {len(valid_pieces)} held out", flush=True)
    skipped = [f"{name}: {reason}" for name, reason in report.skipped.items()]
    if skipped:
        print(f"  skipped {summarize(skipped, examples=10)}", flush=True)
    if not any(len(p) >= s.seq_len for p in train_pieces.values()):
        raise TrainError(f"no training piece has {s.seq_len} steps (--seq-len)")
    return train_pieces, valid_pieces, report.bars


def final(message, file=None):
    """Print the run's last message; from here on Ctrl-C is ignored: the run's work is saved, and
    the process only has to leave (main restores the caller's handler when called in-process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(message, file=file or sys.stdout, flush=True)


def agreed(ranks, work, *, patient=False):
    """work()'s result once every rank has done its part without error; otherwise every rank
    raises the first rank's error (rank 0 prints it), so all stop before anything is written.
    patient: the ranks wait for each other without the collectives' timeout."""
    try:
        result, error = work(), None
    except Exception as e:  # noqa: BLE001 - every rank must hear of it, whatever it is
        result, error = None, e
    said = ranks.gather_text("" if error is None else error_line(error), patient=patient)
    failed = [(rank, message) for rank, message in enumerate(said) if message]
    if error is not None:
        raise error
    if failed:
        rank, message = failed[0]
        raise TrainError(f"rank {rank}: {message}")
    return result


def error_line(error):
    """The one line `error: ...` says for an exception: never empty (a bare MemoryError() is
    named by its type), so that the ranks hear of every error."""
    if isinstance(error, OSError) and not isinstance(error, (UsageError, CheckpointError)):
        line = f"{error.filename}: {error.strerror or error}" if error.filename else str(error.strerror or error)
    else:
        line = str(error)
    if not isinstance(error, (UsageError, CheckpointError, RuntimeError, OSError)):
        line = f"{type(error).__name__}: {line}" if line else type(error).__name__
    return " ".join(line.split()) or type(error).__name__


def fault_here(variable, batch, ranks):
    """A test hook: is batch the one `variable` names, on the rank BIAXIAL_CU_FAULT_RANK names (any)?"""
    rank = os.environ.get("BIAXIAL_CU_FAULT_RANK")
    return batch == int(os.environ.get(variable, "-1")) and (rank is None or int(rank) == ranks.rank)


def start_run_folder(a, s, model, out, checkpoint, notes):
    """Rank 0: make the run folder, record run.json, cut the log back to the checkpoint; returns
    (train losses since the last log row, seconds so far)."""
    out.mkdir(parents=True, exist_ok=True)
    if a.force and not a.resume:
        aside = move_aside(out)
        if aside:
            print(f"--force: moved the earlier run's files to {aside}", flush=True)
    write_json_atomic(out / RUN_FILE, {"version": RUN_VERSION, "settings": vars(s)})
    losses, seconds = [], 0.0
    if a.resume:
        seconds = resume_log(out / LOG_FILE, model.step)
        if checkpoint is not None and model.step:
            kept, at = resume_losses(checkpoint, model.step)
            losses, seconds = kept, (seconds if at is None else at)
        for note in notes:
            print(note, file=sys.stderr, flush=True)
        print(f"resuming {out} after batch {model.step}" if checkpoint is not None else
              f"resuming {out} from the start: it holds no checkpoint", flush=True)
    return losses, seconds


def draw_batch(pieces, bars, s, rng):
    """(batch (B, T, 78, 2), positions (B, T) or None: each step's index in its segment)."""
    drawn = sample_batch(pieces, s.batch_size, s.seq_len, rng, bars=bars)
    return drawn if bars is not None else (drawn, None)


def validation_loss(model, valid_pieces, bars, s, ranks):
    """The mean summed loss of the validation batches (batch i drawn from (seed, 2, i), afresh
    each time: none kept in memory); with several ranks each computes every N-th batch."""
    mine = np.zeros(s.validation_batches)  # (V,)
    for i in range(ranks.rank, s.validation_batches, ranks.size):
        batch, positions = draw_batch(valid_pieces, bars, s, np.random.default_rng([s.seed, 2, i]))
        mine[i] = model.loss(batch, positions=positions)
    return float(np.mean(ranks.sum(mine, "the validation losses")))  # each loss from the one rank that had it


def train(a, ranks):
    s, model, out, checkpoint, notes = agreed(ranks, lambda: prepare(a, ranks))
    # Rank 0 loads the music first, writing or refreshing the corpus cache, which the other ranks
    # then read; they wait for it as long as it takes (the first load of a big folder).
    reading = {"workers": a.workers, "cache": not a.no_cache, "cache_dir": a.cache_dir, "meters": s.meters}
    by_root = agreed(ranks, lambda: load_split(s, reading) if ranks.is_root else None, patient=True)
    by_others = (agreed(ranks, lambda: None if ranks.is_root else load_split(s, reading), patient=True)
                 if ranks.size > 1 else None)
    train_pieces, valid_pieces, bars = by_root if ranks.is_root else by_others
    ranks.running = True  # from here on an error on one rank stops them all (main)
    if model.backend == "cuda":
        ranks.connect_gpus()
    if ranks.size > 1:
        places = ranks.describe()  # every rank takes part; rank 0 says it
        if ranks.is_root:
            print(places, flush=True)
    # From here on files are written, by rank 0 alone.
    losses, seconds = start_run_folder(a, s, model, out, checkpoint, notes) if ranks.is_root else ([], 0.0)
    print(f"backend {model.backend}, {model.parameter_count()} parameters, "
          f"layers time {model.config['t_layer_sizes']} pitch {model.config['p_layer_sizes']}", flush=True)
    validates = s.validation_batches and any(len(p) >= s.seq_len for p in valid_pieces.values())
    note_steps = s.batch_size * (s.seq_len - 1) * N_NOTES
    first = model.step + 1
    last_good = checkpoint if checkpoint is not None and model.step else None
    ranks.last_words = f"the last good checkpoint is {last_good}" if last_good else ""
    from tqdm import tqdm

    stop = []  # Ctrl-C: finish the batch under way, then checkpoint and leave
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    bar = tqdm(range(first, s.batches + 1), initial=first - 1, total=s.batches,
               disable=a.no_progress or not ranks.is_root, unit="batch", dynamic_ncols=True)
    start = time.time() - seconds
    log = os.open(out / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666) if ranks.is_root else None
    board = RunBoard(out / BOARD_DIR, resume_step=model.step) if a.tensorboard and ranks.is_root else None
    last_row = (model.step, seconds)  # (batch, seconds) of the last log row, for the speed
    stopping = False  # every rank's agreed Ctrl-C
    try:
        for batch in bar:
            if stopping:
                break
            drawn, positions = draw_batch(train_pieces, bars, s, np.random.default_rng([s.seed, 0, batch]))
            loss = model.train_step(drawn, positions=positions, ranks=ranks if ranks.size > 1 else None)
            if fault_here("BIAXIAL_CU_INJECT_NAN_AT", batch, ranks):
                next(iter(model.params.values()))[...] = np.nan
            if fault_here("BIAXIAL_CU_INTERRUPT_AT", batch, ranks):
                os.kill(os.getpid(), signal.SIGINT)
            if fault_here("BIAXIAL_CU_KILL_AT", batch, ranks):
                os.kill(os.getpid(), signal.SIGKILL)
            if fault_here("BIAXIAL_CU_STOP_AT", batch, ranks):
                os.kill(os.getpid(), signal.SIGSTOP)
            interrupted, broken = ranks.sum([bool(stop), not model.parameters_finite()], "the stop check")
            stopping = interrupted > 0
            if broken or not np.isfinite(loss):
                where = (f"the last good checkpoint is {last_good}; resume from it with "
                         f"{resume_hint(last_good)}" if last_good else "no checkpoint was written yet")
                bar.close()
                if ranks.is_root:
                    final(f"\nstopped: NaN or Inf in the loss or parameters at batch {batch}; {where}", sys.stderr)
                return EXIT_NAN
            losses.append(float(loss) / note_steps)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if batch % s.log_every == 0 or batch == s.batches:
                val = validation_loss(model, valid_pieces, bars, s, ranks) / note_steps if validates else None
                if ranks.is_root:
                    row = {"batch": batch, "train_loss": float(np.mean(losses)), "val_loss": val,
                           "seconds": round(time.time() - start, 3)}
                    os.write(log, (json.dumps(row) + "\n").encode())  # one whole line per write
                    training_curve_png(out / LOG_FILE, out / "curve.png")
                    if board is not None:
                        per_batch = max(row["seconds"] - last_row[1], 1e-9) / (batch - last_row[0])
                        board.scalars(batch, row["train_loss"], val, per_batch, note_steps / per_batch)
                        board.flush()
                    last_row = (batch, row["seconds"])
                losses = []
            if checkpoint_due(batch, s):
                last_good = out / LATEST
                ranks.last_words = f"the last good checkpoint is {last_good}"
                if ranks.is_root:
                    save_checkpoint(model, out, losses, round(time.time() - start, 3))
                    piece = write_sample(model, train_pieces, bars, out, batch, s) if s.sample_steps else None
                    if board is not None:
                        board_sample(board, model, out, batch, piece)
        bar.close()
        if stopping and model.step < s.batches:
            if ranks.is_root:
                path = save_checkpoint(model, out, losses, round(time.time() - start, 3))
                final(f"\ninterrupted after batch {model.step}: checkpoint {path}; resume with: "
                      f"{resume_hint(out)}", sys.stderr)
            return EXIT_INTERRUPTED
    finally:
        if log is not None:
            os.close(log)
        if board is not None:
            board.close()
        bar.close()
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # not after the last message
            signal.signal(signal.SIGINT, previous_handler)
    if ranks.is_root:
        final(f"done: {model.step} batches; checkpoint {last_good}")
    return 0


def main(argv=None, *, leaving=False):
    """The command line (argv, default sys.argv[1:]); returns the exit code. leaving: the process
    exits next, so a Ctrl-C after the last message is ignored rather than the caller's handler
    restored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    ranks = None
    try:
        try:
            ranks = world()
        except DistributedError as e:
            return cli.fail(e)
        if not ranks.is_root:  # rank 0 speaks for every rank; the others say only their own errors
            sys.stdout = open(os.devnull, "w")
            warnings.simplefilter("ignore")
        parser = build_parser()
        with contextlib.redirect_stderr(sys.stderr if ranks.is_root else open(os.devnull, "w")):
            a = parse_checked(parser, argv)
        try:
            return train(a, ranks)
        except Exception as e:
            if ranks.running and ranks.size > 1:  # the others wait in a collective: stop them all now
                if not isinstance(e, (UsageError, CheckpointError, RuntimeError, OSError)):
                    traceback.print_exc()  # a bug: its traceback, then the one line
                print(f"rank {ranks.rank}: error: {error_line(e)}", file=sys.stderr, flush=True)
                ranks.abort(EXIT_USAGE)
            if not isinstance(e, (UsageError, CheckpointError, RuntimeError, OSError)):
                raise
            return cli.fail(error_line(e)) if ranks.is_root else EXIT_USAGE
    except KeyboardInterrupt:
        if ranks is None or ranks.is_root:
            print("\ninterrupted before training started; no checkpoint was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if leaving else previous)


def parse_checked(parser, argv):
    """The parsed command line, with the checks argparse cannot make (SystemExit 2 when bad)."""
    a = parser.parse_args(argv)
    for flag, value in (("MUSIC_DIR", a.music_dir), ("--out", a.out), ("--resume", a.resume)):
        if value == "":
            parser.error(f"{flag}: an empty path; give a folder")
    if a.tf32 and a.backend == "numpy":
        parser.error("--tf32 is a mode of the cuda backend; the numpy backend computes in full precision")
    if a.force and a.resume:
        parser.error("--force starts a new run and --resume continues one; give one of them")
    if a.cache_dir is not None and (not a.cache_dir or os.path.exists(a.cache_dir) and not os.path.isdir(a.cache_dir)):
        parser.error(f"--cache-dir {a.cache_dir!r}: give a folder (made if missing)")
    if a.tensorboard and not boards.available():
        parser.error(f"--tensorboard needs the tensorboard extra: {boards.INSTALL}")
    if a.tensorboard is None:
        a.tensorboard = boards.available()
    return a


if __name__ == "__main__":
    sys.exit(main(leaving=True))
