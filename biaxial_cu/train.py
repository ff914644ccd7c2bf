"""python -m biaxial_cu.train [MUSIC_DIR]: train the biaxial model, with progress, validation,
checkpoints that resume exactly, samples to look at, and clear errors.

Batch i is drawn from a generator seeded with (seed, i), and dropout masks come from the model's
own generator, which checkpoints carry: a run resumed from a checkpoint gives the same parameters
as one that never stopped. For tests, BIAXIAL_CU_INJECT_NAN_AT=i poisons a parameter after batch i.
"""
import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from .data import load_pieces_report, sample_batch, shipped_corpus_dir, split_pieces
from .errors import CheckpointError
from .generate import compose, seed_from_pieces
from .midi import write_state_matrix
from .model import Model
from .viz import piano_roll_png, training_curve_png

EXIT_USAGE, EXIT_NAN, EXIT_INTERRUPTED = 2, 3, 130


class TrainError(Exception):
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
    ap = argparse.ArgumentParser(prog="python -m biaxial_cu.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("music_dir", nargs="?", help="folder of MIDI files (default: the shipped corpus)")
    ap.add_argument("--out", default="runs/biaxial", help="output folder (default runs/biaxial)")
    ap.add_argument("--batches", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--t-layers", type=parse_sizes, default=None, help="time layer sizes (300,300)")
    ap.add_argument("--p-layers", type=parse_sizes, default=None, help="pitch layer sizes (100,50)")
    ap.add_argument("--dropout", type=float, default=None, help="0.5")
    ap.add_argument("--cell-activation", choices=["identity", "tanh"], default=None)
    ap.add_argument("--backend", choices=["auto", "cuda", "numpy"], default="auto")
    ap.add_argument("--tf32", action="store_true", default=None,
                    help="cuda backend: matrix products on TF32 tensor cores (as cuDNN's default), "
                         "the rest fp32; recorded in the checkpoint (a resumed run keeps it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", metavar="CHECKPOINT")
    ap.add_argument("--validation-fraction", type=float, default=0.1)
    ap.add_argument("--validation-batches", type=int, default=4)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--sample-every", type=int, default=500, help="sample + checkpoint interval")
    ap.add_argument("--early-sample-every", type=int, default=100)
    ap.add_argument("--early-until", type=int, default=1000)
    ap.add_argument("--sample-steps", type=int, default=256, help="length of samples written")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def load_music(folder, min_steps):
    folder = Path(folder) if folder else shipped_corpus_dir()
    if not folder.exists():
        raise TrainError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise TrainError(f"not a folder: {folder}")
    report = load_pieces_report(folder, min_steps=min_steps)
    if not report.pieces:
        why = "; ".join(f"{name}: {reason}" for name, reason in sorted(report.skipped.items()))
        raise TrainError(f"no usable pieces in {folder}" + (f" ({why})" if why else " (no MIDI files)"))
    return report


def make_model(a):
    flags = {"t_layer_sizes": a.t_layers, "p_layer_sizes": a.p_layers, "dropout": a.dropout,
             "cell_activation": a.cell_activation}
    if a.resume:
        model = Model.load(a.resume, backend=a.backend, tf32=a.tf32)
        for key, value in flags.items():
            have = model.config[key]
            if value is not None and (list(value) if isinstance(value, tuple) else value) != have:
                raise TrainError(f"{a.resume} was trained with {key}={have}, not {value}")
        return model
    defaults = {"t_layer_sizes": (300, 300), "p_layer_sizes": (100, 50), "dropout": 0.5,
                "cell_activation": "identity"}
    return Model(**{k: defaults[k] if v is None else v for k, v in flags.items()},
                 backend=a.backend, seed=a.seed, tf32=bool(a.tf32))


def finite(model, loss):
    return bool(np.isfinite(loss)) and model.parameters_finite()


def write_sample(model, pieces, out, batch, a):
    rng = np.random.default_rng([a.seed, 1, batch])
    piece = compose(model, seed_from_pieces(pieces, rng, seq_len=a.seq_len), a.sample_steps, rng=rng)
    write_state_matrix(piece, out / f"sample_{batch:06d}.mid")
    piano_roll_png(piece, out / f"sample_{batch:06d}.png", title=f"sample after batch {batch}")


def save_checkpoint(model, out, batch):
    model.save(out / f"checkpoint_{batch:06d}.npz")
    model.save(out / "latest.npz")
    return out / "latest.npz"


def train(a):
    report = load_music(a.music_dir, a.seq_len)
    train_pieces, valid_pieces = split_pieces(report.pieces, a.validation_fraction, seed=a.seed)
    print(report.summary() + f"; {len(train_pieces)} for training, {len(valid_pieces)} held out", flush=True)
    for name, reason in sorted(report.skipped.items()):
        print(f"  skipped {name}: {reason}", flush=True)
    if not any(len(p) >= a.seq_len for p in train_pieces.values()):
        raise TrainError(f"no training piece has {a.seq_len} steps (--seq-len)")
    model = make_model(a)
    print(f"backend {model.backend}, {model.parameter_count()} parameters, "
          f"layers time {model.config['t_layer_sizes']} pitch {model.config['p_layer_sizes']}", flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    valid_batches = [sample_batch(valid_pieces, a.batch_size, a.seq_len, np.random.default_rng([a.seed, 2, i]))
                     for i in range(a.validation_batches)] \
        if any(len(p) >= a.seq_len for p in valid_pieces.values()) else []
    note_steps = a.batch_size * (a.seq_len - 1) * 78
    inject = int(os.environ.get("BIAXIAL_CU_INJECT_NAN_AT", "-1"))
    first = model.step + 1
    last_good = Path(a.resume) if a.resume else None
    from tqdm import tqdm

    bar = tqdm(range(first, a.batches + 1), initial=first - 1, total=a.batches, disable=a.no_progress,
               unit="batch", dynamic_ncols=True)
    losses, start = [], time.time()
    stop = []  # Ctrl-C: finish the batch under way, then checkpoint and leave
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    try:
        with open(out / "log.jsonl", "a") as log:
            for batch in bar:
                if stop:
                    break
                loss = model.train_step(sample_batch(train_pieces, a.batch_size, a.seq_len,
                                                     np.random.default_rng([a.seed, 0, batch])))
                if batch == inject:
                    next(iter(model.params.values()))[...] = np.nan
                if not finite(model, loss):
                    where = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written yet"
                    print(f"\nstopped: NaN or Inf in the loss or parameters at batch {batch}; {where}",
                          file=sys.stderr)
                    return EXIT_NAN
                losses.append(loss / note_steps)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if batch % a.log_every == 0 or batch == a.batches:
                    val = (float(np.mean([model.loss(b) for b in valid_batches])) / note_steps
                           if valid_batches else None)
                    row = {"batch": batch, "train_loss": float(np.mean(losses)), "val_loss": val,
                           "seconds": round(time.time() - start, 3)}
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    losses = []
                    training_curve_png(out / "log.jsonl", out / "curve.png")
                every = a.early_sample_every if batch <= a.early_until else a.sample_every
                if batch % every == 0 or batch == a.batches:
                    last_good = save_checkpoint(model, out, batch)
                    write_sample(model, train_pieces, out, batch, a)
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        bar.close()
    if stop:
        path = save_checkpoint(model, out, model.step)
        print(f"\ninterrupted after batch {model.step}: checkpoint {path}; resume with "
              f"--resume {path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"done: {model.step} batches; checkpoint {out / 'latest.npz'}", flush=True)
    return 0


def main(argv=None):
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.tf32 and a.backend == "numpy":
        parser.error("--tf32 is a mode of the cuda backend; the numpy backend computes in full precision")
    try:
        return train(a)
    except (TrainError, CheckpointError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
