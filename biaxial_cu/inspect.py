"""python -m biaxial_cu.inspect CHECKPOINT PIECE.mid: what the model computes over one piece.

Runs the model's forward pass (Model.forward, no dropout) over the piece and writes to --out:
- activations.npz: `time.k` and `pitch.k` hidden outputs as (T-1, 78, H) (step, note, unit),
  `probabilities` (T-1, 78, 2) and `target` (T-1, 78, 2);
- one heatmap PNG per layer (mean over units, or --unit U: notes up, steps across; time layers run
  along time for every note, pitch layers along the notes of every step);
- prediction.png: the model's P(play) beside the real piano roll.
"""
from . import cli

if __name__ == "__main__":  # Ctrl-C while the imports below run: one line, no traceback
    cli.quiet_start()

import sys  # noqa: E402

import numpy as np  # noqa: E402

from .common import write_atomically  # noqa: E402
from .errors import CheckpointError, MidiError  # noqa: E402
from .midi import read_state_matrix  # noqa: E402
from .model import Model  # noqa: E402
from .viz import _pyplot  # noqa: E402


def activations(model, S, pos=None):
    """({name: array}, loss) of one piece S (T, 78, 2) through the model's forward, no dropout:
    every layer's output (T-1, 78, H), `probabilities` and `target` (T-1, 78, 2). pos (T,): the
    steps' bar positions (meters "all"); None: the step index (the original's rule)."""
    S = np.asarray(S)
    loss, acts = model.forward(S[None], positions=None if pos is None else np.asarray(pos)[None])
    out = {name: a[0] for name, a in acts.items()}
    out["target"] = S[1:].astype(out["probabilities"].dtype)
    return out, loss


def _heatmap(plt, image, title, path, cmap="viridis"):
    fig, ax = plt.subplots(figsize=(max(4, image.shape[1] / 25), 4), dpi=100)
    im = ax.imshow(image, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set(title=title, xlabel="step", ylabel="note (0 = MIDI 24)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_pictures(acts, out, unit=None):
    plt = _pyplot()
    if plt is None:
        return []
    written = []
    for name, h in acts.items():
        if not name.startswith(("time.", "pitch.")):
            continue
        image = (h.mean(axis=2) if unit is None else h[:, :, unit]).T  # (78, T-1)
        what = "mean over units" if unit is None else f"unit {unit}"
        path = out / f"{name.replace('.', '_')}.png"
        _heatmap(plt, image, f"{name} ({what})", path)
        written.append(path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100, sharey=True)
    for ax, image, title in ((axes[0], acts["probabilities"][:, :, 0].T, "model: P(play)"),
                             (axes[1], acts["target"][:, :, 0].T, "the piece: play")):
        ax.imshow(image, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set(title=title, xlabel="step")
    axes[0].set_ylabel("note (0 = MIDI 24)")
    fig.tight_layout()
    fig.savefig(out / "prediction.png")
    plt.close(fig)
    return written + [out / "prediction.png"]


def build_parser():
    ap = cli.ArgumentParser(prog="python -m biaxial_cu.inspect", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("piece")
    ap.add_argument("--out", default="inspect",
                    help="output folder (made if needed; its files of earlier runs are overwritten)")
    ap.add_argument("--max-steps", type=cli.int_at_least(2), default=512,
                    help="read at most this many steps of the piece (>= 2, default 512)")
    ap.add_argument("--unit", type=cli.int_at_least(0),
                    help="show one unit instead of the mean (below the smallest layer size)")
    return ap


def output_files(out, config):
    """The files inspect writes in folder out for a model config."""
    layers = [f"time_{k}" for k in range(len(config["t_layer_sizes"]))] + \
             [f"pitch_{k}" for k in range(len(config["p_layer_sizes"]))]
    return [out / "activations.npz"] + [out / f"{name}.png" for name in layers] + [out / "prediction.png"]


def check_unit(unit, config):
    """--unit against every layer's size: an error, never a silent clamp."""
    sizes = {f"time.{k}": H for k, H in enumerate(config["t_layer_sizes"])}
    sizes.update({f"pitch.{k}": H for k, H in enumerate(config["p_layer_sizes"])})
    name, smallest = min(sizes.items(), key=lambda item: item[1])
    if unit is not None and unit >= smallest:
        raise cli.UsageError(f"--unit {unit}: layer {name} has {smallest} units (0..{smallest - 1}); "
                             f"give --unit below {smallest}")


def main(argv=None):
    a = build_parser().parse_args(argv)
    return cli.run(_main, a, lambda written: f"{len(written)} file(s) in {a.out}")


def _main(a, written):
    try:
        out = cli.check_output_folder(a.out)
        for path in (a.checkpoint, a.piece):
            if cli.same_file(path, out):
                raise cli.UsageError(f"--out {a.out} is the input {path}; give another folder")
    except cli.UsageError as e:
        return cli.fail(e)
    try:
        model = Model.load(a.checkpoint, backend="numpy")
        check_unit(a.unit, model.config)
        cli.check_outputs(output_files(out, model.config), inputs=[a.checkpoint, a.piece])
        S, pos = read_state_matrix(a.piece, meters=model.meters, return_bar_positions=True)  # as the model learnt
        S, pos = S[:a.max_steps], (pos[:a.max_steps] if model.meters == "all" else None)
        if len(S) < 2:
            raise ValueError(f"{a.piece}: {len(S)} step(s); need at least 2")
    except (cli.UsageError, CheckpointError, MidiError, ValueError) as e:
        return cli.fail(e)
    out.mkdir(parents=True, exist_ok=True)
    acts, loss = activations(model, S, pos)
    # atomically: a hard link to another file (the checkpoint) is broken, never written through
    write_atomically(out / "activations.npz", lambda f: np.savez(f, **acts))
    written.append(out / "activations.npz")
    pictures = write_pictures(acts, out, a.unit)
    print(f"{a.piece}: {len(S)} steps, loss per note-step {loss / ((len(S) - 1) * 78):.4f}; "
          f"wrote {out / 'activations.npz'} and {len(pictures)} PNGs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
