"""python -m biaxial_cu.evaluate CHECKPOINT MUSIC_DIR: how good is a model on held-out pieces?

Loss per note-step (MODEL_SPEC 4 summed, divided by 78 x predicted steps) over whole pieces cut
into consecutive 128-step windows (the last, shorter one too when it has 2 steps or more), no
dropout, beside two baselines on exactly the same predicted steps:
- marginal: every note plays with its frequency in the training corpus and, when it plays, is
  struck with its frequency of being struck (both clipped to [1e-4, 1 - 1e-4]);
- repeat: the previous step again, with probability 1 - 1e-3 (1e-3 for what it did not do).
With --generated DIR, the statistics of generated pieces beside the held-out ones (table + PNG).
With --tensorboard DIR, the same numbers and tables in a TensorBoard log there, at the checkpoint's
batch (a training run's log folder works: its curves gain the evaluation's).
"""
from . import cli

if __name__ == "__main__":  # Ctrl-C while the imports below run: one line, no traceback
    cli.quiet_start()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from . import board  # noqa: E402
from .backends.reference import summed_loss as loss_of_probabilities  # noqa: E402  (summed loss of P against y)
from .common import METER_MODES, write_atomically  # noqa: E402
from .data import load_pieces_report, shipped_corpus_dir  # noqa: E402
from .errors import CheckpointError  # noqa: E402
from .midi import bar_positions  # noqa: E402
from .model import Model  # noqa: E402
from .stats import corpus_stats  # noqa: E402
from .viz import _pyplot  # noqa: E402

WINDOW = 128
CLIP = 1e-4
REPEAT_SURE = 1 - 1e-3
BASELINES = ("model", "marginal", "repeat")
TABLE_KEYS = ("pieces", "steps", "notes_per_step", "articulations_per_step", "lowest_pitch",
              "highest_pitch", "mean_duration", "silent_fraction")  # the statistics tables show


def window_starts(n_steps, length=WINDOW):
    """Where consecutive windows of `length` steps start (the last may be shorter, at least 2)."""
    return list(range(0, n_steps - 1, length))


def windows(S, length=WINDOW):
    """Consecutive windows of `length` steps (the last may be shorter, at least 2)."""
    return [S[s:s + length] for s in window_starts(len(S), length)]


def marginal_probabilities(pieces):
    """(78, 2): P(play) per note and P(struck | play) per note over all steps of the pieces."""
    S = np.concatenate(list(pieces.values())).astype(np.float64)  # (sum T, 78, 2)
    plays = S[:, :, 0].sum(axis=0)
    p_play = plays / len(S)
    p_struck = np.divide(S[:, :, 1].sum(axis=0), plays, out=np.full(78, 0.5), where=plays > 0)
    return np.clip(np.stack([p_play, p_struck], axis=1), CLIP, 1 - CLIP)


def evaluate(model, pieces, marginal, bars=None):
    """{"model"|"marginal"|"repeat": loss per note-step, "note_steps": n} over all windows.
    bars (meters "all": LoadReport.bars): the beat inputs follow each piece's bar lines; None:
    each window's step index (the original's rule)."""
    totals = {"model": 0.0, "marginal": 0.0, "repeat": 0.0}
    note_steps = 0
    for key, S in pieces.items():
        pos = None if bars is None else bar_positions(bars[key], len(S))  # (T,)
        for start in window_starts(len(S)):
            w = S[start:start + WINDOW]  # (<= 128, 78, 2)
            y = w[1:].astype(np.float64)  # (T-1, 78, 2)
            positions = None if pos is None else pos[None, start:start + len(w)]  # (1, len(w))
            totals["model"] += model.loss(w[None], positions=positions)
            totals["marginal"] += loss_of_probabilities(np.broadcast_to(marginal, y.shape), y)
            repeat = np.where(w[:-1] > 0, REPEAT_SURE, 1 - REPEAT_SURE)  # (T-1, 78, 2)
            totals["repeat"] += loss_of_probabilities(repeat, y)
            note_steps += y.shape[0] * 78
    return {**{k: v / note_steps for k, v in totals.items()}, "note_steps": note_steps}


def stats_table(columns):
    """A readable table of corpus_stats dicts side by side."""
    lines = [f"{'':24}" + "".join(f"{name:>14}" for name in columns)]
    for key in TABLE_KEYS:
        cells = "".join(f"{columns[name][key]:>14.3f}" if isinstance(columns[name][key], float)
                        else f"{str(columns[name][key]):>14}" for name in columns)
        lines.append(f"{key:24}{cells}")
    return "\n".join(lines)


def markdown_table(header, rows):
    """A Markdown table (TensorBoard's text tab shows it as a table); floats to 4 digits."""
    def cell(value):
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows])


def write_board(logdir, step, result):
    """result (as --json writes it) into a TensorBoard log in logdir at step: each loss per
    note-step and numeric statistic as a scalar, and the tables as text."""
    losses = result["loss_per_note_step"]
    with board.RunBoard(logdir) as log:
        for name in BASELINES:
            log.scalar(step, f"evaluate/loss/{name}", losses[name])
        log.text(step, "evaluate/losses", markdown_table(
            ["", "loss per note-step"], [[name, losses[name]] for name in BASELINES]
            + [["note-steps", losses["note_steps"]], ["pieces", result["pieces"]]]))
        columns = result.get("statistics")
        if columns:
            for key in TABLE_KEYS:
                for name, st in columns.items():
                    if isinstance(st[key], (int, float)):
                        log.scalar(step, f"evaluate/{key}/{name.replace(' ', '_')}", st[key])
            log.text(step, "evaluate/statistics", markdown_table(
                [""] + list(columns), [[key] + [st[key] for st in columns.values()] for key in TABLE_KEYS]))


def stats_png(columns, path):
    plt = _pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for name, st in columns.items():
        axes[0].plot(range(12), st["pitch_class_histogram"], marker="o", label=name)
        hist = np.array(st["duration_histogram"], float)
        axes[1].plot(range(1, len(hist) + 1), hist / max(hist.sum(), 1), marker=".", label=name)
    axes[0].set(title="pitch classes (C = 0)", xlabel="pitch class", ylabel="share of sounding steps")
    axes[1].set(title="note durations", xlabel="steps", ylabel="share of notes")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def build_parser():
    ap = cli.ArgumentParser(prog="python -m biaxial_cu.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("music_dir", type=cli.existing_folder, help="held-out pieces")
    ap.add_argument("--train-dir", type=cli.existing_folder,
                    help="corpus for the marginal baseline (default: the shipped corpus)")
    ap.add_argument("--generated", metavar="DIR", type=cli.existing_folder,
                    help="generated MIDI files to compare statistics with")
    ap.add_argument("--json", metavar="OUT.json", type=cli.file_name, help="results as JSON (overwritten if it exists)")
    ap.add_argument("--png", metavar="OUT.png", type=cli.file_name, help="statistics figure (needs --generated)")
    ap.add_argument("--tensorboard", metavar="DIR", help="also write the results to a TensorBoard log "
                    "in DIR (new event files beside any there), at the checkpoint's batch; needs "
                    f"{board.INSTALL}")
    ap.add_argument("--meters", choices=METER_MODES, default=None,
                    help="how time signatures are read (default: as the model was trained, recorded in "
                         "the checkpoint; another mode is refused)")
    ap.add_argument("--backend", choices=["auto", "cuda", "numpy"], default="auto")
    return ap


def check_outputs(a):
    """--json, --png and --tensorboard checked before any work: writable files (a folder for
    --tensorboard), none the same as another, not the checkpoint or a file of an input folder;
    --png only with --generated; --tensorboard only with its extra installed."""
    if a.png and not a.generated:
        raise cli.UsageError("--png draws the statistics of --generated pieces; give --generated DIR")
    files = cli.check_outputs([p for p in (a.json, a.png) if p], inputs=[a.checkpoint],
                              input_folders=[a.music_dir, a.train_dir or shipped_corpus_dir(), a.generated])
    if a.tensorboard is not None:
        if not a.tensorboard:
            raise cli.UsageError("--tensorboard: an empty path; give a folder")
        cli.check_output_folder(a.tensorboard)
        for path in files + [Path(a.checkpoint)]:
            if cli.same_file(path, a.tensorboard):
                raise cli.UsageError(f"--tensorboard {a.tensorboard}: the command also uses the file {path} "
                                     "there; give another folder")
        if not board.available():
            raise cli.UsageError(f"--tensorboard needs tensorboardX: {board.INSTALL}")


def main(argv=None):
    return cli.run(_main, build_parser().parse_args(argv), lambda written: " and ".join(map(str, written)))


def _main(a, written):
    try:
        check_outputs(a)
    except cli.UsageError as e:
        return cli.fail(e)
    try:
        model = Model.load(a.checkpoint, backend=a.backend)
        if a.meters not in (None, model.meters):
            raise ValueError(f"--meters {a.meters}: {a.checkpoint} was trained on music read with meters "
                             f"{model.meters}; evaluate it the same way (leave --meters out)")
        held_out, bars = _pieces(a.music_dir, model.meters)
        train, _ = _pieces(a.train_dir or shipped_corpus_dir(), model.meters)
        generated = _pieces(a.generated, model.meters)[0] if a.generated else None
    except (CheckpointError, ValueError, RuntimeError) as e:
        return cli.fail(e)
    result = {"checkpoint": str(a.checkpoint), "pieces": len(held_out), "meters": model.meters,
              "loss_per_note_step": evaluate(model, held_out, marginal_probabilities(train), bars)}
    losses = result["loss_per_note_step"]
    print(f"{len(held_out)} pieces, {losses['note_steps']} note-steps; loss per note-step:")
    for name in BASELINES:
        print(f"  {name:10} {losses[name]:.4f}")
    if generated is not None:
        columns = {"held out": corpus_stats(held_out), "generated": corpus_stats(generated)}
        result["statistics"] = columns
        print(stats_table(columns))
        if a.png:
            Path(a.png).parent.mkdir(parents=True, exist_ok=True)
            if stats_png(columns, a.png) is not None:
                written.append(a.png)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=1)  # atomically: a hard link to another file is broken,
        write_atomically(a.json, lambda f: f.write(text), binary=False)  # never written through
        written.append(a.json)
    if a.tensorboard is not None:
        write_board(a.tensorboard, model.step, result)
        written.append(a.tensorboard)
    return 0


def _pieces(folder, meters):
    """(pieces, their meter changes with meters "all", else None) of a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no such folder: {folder}")
    report = load_pieces_report(folder, min_steps=2, meters=meters)
    if not report.pieces:
        raise ValueError(f"no readable pieces in {folder}")
    return report.pieces, report.bars


if __name__ == "__main__":
    sys.exit(main())
