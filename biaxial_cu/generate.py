"""Generation: compose new music with a trained model (MODEL_SPEC.md section 7).

compose(model, seed_state, steps) starts from one state S[0] (the seed, step index 0) and
produces S[1..steps]. Each step t:

  1. time stack, one step: features(S[t], t) (78, 80) -> every time LSTM layer advances its
     78 rows (one per note) by one step; the last layer's h is the time output (78, Ht).
  2. pitch stack over notes n = 0..77, one note after the other: note n's input is
     [time output of note n, chosen (play, articulate) of note n-1] ([0, 0] for n = 0);
     the output layer gives P = (P(play), P(articulate | play)) and the choice is
         play = U1 < P0 ** cons,   articulate = play and U2 < P1,
     with U1 = U[t, n, 0], U2 = U[t, n, 1] uniforms in [0, 1).
  3. adaptive conservativity (per piece): fewer than 2 notes playing -> cons = min(cons, 1)
     - 0.02, else cons += (1 - cons) * 0.3 (next_conservativity).

This module checks the arguments, draws the uniforms (so every backend gets the same random
stream) and hands the work to the model's backend: numpy_backend.compose_host on the CPU
(NumPy time stack, numba pitch_sweep), or the cuda backend's DeviceGenerator (kernels/sample.cu).
Both take the same uniforms to the same choices up to the last ulp of expf/tanhf on a GPU.
K pieces are composed side by side; piece k depends only on its seed and its uniforms. The
sampling rule is evaluated in float64: P0 and P1 widened exactly, the threshold P0 ** cons with
IEEE pow (0 ** 0 = 1, 0 ** negative = inf: adaptive conservativity may go to 0 or below after a
long silence, and then every note plays, which breaks the silence as in the original). No
dropout at generation (inverted dropout needs no rescaling at inference).
"""
from . import cli

if __name__ == "__main__":  # Ctrl-C while the imports below run: one line, no traceback
    cli.quiet_start()

import argparse  # noqa: E402
import math  # noqa: E402
import warnings  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from .backends.pitch_sweep import CONSERVATIVITY_PULL_UP, CONSERVATIVITY_STEP_DOWN, MIN_NOTES_PLAYING  # noqa: E402
from .backends.numpy_backend import compose_host  # noqa: E402
from .common import BAR_STEPS_4_4, N_NOTES, SEGMENT_LEN, ComposeTrace, as_generator, check_int, summarize  # noqa: E402,F401  (ComposeTrace: compose_trace's result)
from .data import load_pieces_report, sample_batch, shipped_corpus_dir  # noqa: E402
from .errors import CheckpointError  # noqa: E402
from . import midi  # noqa: E402
from .midi import DEFAULT_MAX_STEPS, write_state_matrix  # noqa: E402
from .model import Model  # noqa: E402
from .params import host_weights  # noqa: E402
from .viz import SYNTH_INSTALL, WAV_PEAK_DBFS, piano_roll_png, render_wav, synthesizer  # noqa: E402


# ----------------------------------------------------------------------------- public


def compose(model, seed_state, steps, *, conservativity=1.0, adaptive=True, rng=None,
            uniforms=None, meter=None, bar_position=0):
    """Compose `steps` new states after `seed_state` (MODEL_SPEC section 7).

    seed_state: (78, 2) of 0/1 -> returns (steps + 1, 78, 2) uint8, row 0 the seed;
                (K, 78, 2)     -> returns (K, steps + 1, 78, 2) uint8, piece k the same as
                                  compose of seed k alone with uniforms[k].
    steps: int >= 0. conservativity: starting value, a finite number > 0 (1 = sample the
    model's probabilities as they are; higher = fewer, surer notes). adaptive: update it
    after every step (next_conservativity); False keeps it fixed.
    uniforms: (steps, 78, 2) (or (K, steps, 78, 2)) numbers in [0, 1): U[t, n, 0] decides
    note n's play at step t, U[t, n, 1] its articulate. If None they are drawn from rng
    (a numpy Generator, an int seed or None for fresh entropy) as rng.random(shape).
    meter: the bars the beat inputs follow, "3/4", (3, 4) or a bar length in steps (midi.py's
    rule: 16 * N / D steps); bar_position: the seed's steps since its bar line (0: the seed is a
    downbeat). None: the original's rule, the step index from the seed (4/4 from the seed). A
    model trained with meters "original" never saw other bars: asking it for one warns.
    """
    trace = compose_trace(model, seed_state, steps, conservativity=conservativity, adaptive=adaptive,
                          rng=rng, uniforms=uniforms, meter=meter, bar_position=bar_position)
    return trace.states[0] if np.ndim(seed_state) == 2 else trace.states


def compose_trace(model, seed_states, steps, *, conservativity=1.0, adaptive=True, rng=None,
                  uniforms=None, meter=None, bar_position=0):
    """compose for K seeds (K, 78, 2) on the model's backend, also returning the probabilities
    the model gave and the conservativity used at each step: a ComposeTrace with states
    (K, steps + 1, 78, 2) uint8, probabilities (K, steps, 78, 2) and conservativity
    (K, steps + 1) float64 (the value used at step t; the last, the value after). A (78, 2) seed
    counts as K = 1 (uniforms then (steps, 78, 2), as for compose). model: a Model, or any object
    with a .params dict in API.md's names (numpy or device arrays) and optionally a .config with
    cell_activation, composed on the CPU. meter, bar_position: as for compose."""
    seeds, _, steps, conservativity, adaptive, uniforms = _check_arguments(
        seed_states, steps, conservativity, adaptive, rng, uniforms)
    config = getattr(model, "config", None) or {}
    positions = compose_positions(seeds.shape[0], steps, meter, bar_position, config.get("meters", "original"))
    engine = getattr(model, "engine", None)
    if engine is not None:  # a Model: its backend composes
        trace = engine.compose(seeds, steps, conservativity, adaptive, uniforms, positions)
    else:  # anything else with .params (and .config): the CPU composer on host copies
        params = getattr(model, "params", None)
        trace = compose_host(host_weights(params, config.get("cell_activation", "identity")), seeds, steps,
                             conservativity, adaptive, uniforms, positions)
    _check_trace(trace, seeds.shape[0], steps)
    return trace


def compose_positions(n_pieces, steps, meter, bar_position, meters="original"):
    """(K, steps) int32: the bar position of each step's input state (the seed's at step 0).
    meter None: the step index from the seed (the original's rule); else (bar_position + t)
    modulo the meter's bar length. Warns when a model read with meters "original" is asked for
    bars other than 16 steps."""
    bar_position = check_int(bar_position, "bar_position", 0)
    steps_from_seed = np.arange(steps, dtype=np.int64)  # (steps,)
    if meter is None:
        if bar_position:
            raise ValueError("bar_position needs a meter (the original's rule counts from the seed)")
        positions = steps_from_seed
    else:
        bar = bar_length(meter)
        if meters == "original" and bar != BAR_STEPS_4_4:
            warnings.warn(f"this model learnt from music read with meters 'original' (4/4 bars of "
                          f"{BAR_STEPS_4_4} steps from each segment's start); it never saw bars of {bar} "
                          f"steps, so its beat inputs will look unfamiliar", UserWarning, stacklevel=3)
        positions = (bar_position + steps_from_seed) % bar
    return np.tile(positions.astype(np.int32), (n_pieces, 1))


def bar_length(meter):
    """Steps per bar of a meter: "3/4", (3, 4) or a bar length in steps (an int >= 1)."""
    if isinstance(meter, (int, np.integer)) and not isinstance(meter, bool):
        return check_int(meter, "meter (a bar length in steps)", 1)
    return midi.bar_steps(*midi.parse_meter(meter))


def next_conservativity(conservativity, n_playing):
    """The adaptive rule (MODEL_SPEC section 7), for one piece or elementwise for arrays:
    fewer than 2 notes playing -> min(cons, 1) - 0.02; otherwise cons + (1 - cons) * 0.3.
    Computed in float64; returns a float for scalar inputs."""
    cons = np.asarray(conservativity, dtype=np.float64)
    quiet = np.asarray(n_playing) < MIN_NOTES_PLAYING
    lowered = np.minimum(cons, 1.0) - CONSERVATIVITY_STEP_DOWN
    raised = cons + (1.0 - cons) * CONSERVATIVITY_PULL_UP
    updated = np.where(quiet, lowered, raised)
    return float(updated) if updated.ndim == 0 else updated


def seed_from_pieces(pieces, rng=None, *, seq_len=SEGMENT_LEN, bars=None):
    """The default seed: step 0 of a random training segment, (78, 2) uint8.

    A piece uniformly among those with at least seq_len steps (sorted keys), a start
    uniformly from range(0, T - seq_len + 1, 16): data.sample_batch's rule, one segment
    (with bars, meters "all": a start among the piece's bar lines, so the seed is a downbeat).
    pieces: a dict name -> (T, 78, 2) (as load_pieces returns) or a list of such arrays.
    rng: a numpy Generator, an int seed or None."""
    if isinstance(pieces, (list, tuple)):
        pieces = {f"{i:09d}": S for i, S in enumerate(pieces)}
    segment = sample_batch(pieces, batch_size=1, seq_len=seq_len, rng=as_generator(rng), bars=bars)
    return (segment if bars is None else segment[0])[0, 0].copy()  # (78, 2)


def silent_seed():
    """The silent seed: no note playing, (78, 2) uint8."""
    return np.zeros((N_NOTES, 2), dtype=np.uint8)


# ----------------------------------------------------------------------------- checks


def _check_arguments(seed_state, steps, conservativity, adaptive, rng, uniforms):
    """compose's arguments checked: (seeds (K, 78, 2) uint8, single, steps, conservativity,
    adaptive, uniforms (K, steps, 78, 2) float64 given or drawn from rng)."""
    seeds, single = _check_seed_state(seed_state)  # (K, 78, 2)
    steps = check_int(steps, "steps", 0)
    conservativity = _check_conservativity(conservativity)
    adaptive = _check_flag(adaptive, "adaptive")
    if uniforms is None:
        uniforms = _draw_uniforms(rng, seeds.shape[0], steps, single)  # (K, steps, 78, 2)
    else:
        uniforms = _check_uniforms(uniforms, seeds.shape[0], steps, single)
    return seeds, single, steps, conservativity, adaptive, uniforms


def _check_seed_state(seed_state):
    """(seeds (K, 78, 2) uint8, single) where single says a (78, 2) seed was given."""
    try:
        seeds = np.asarray(seed_state)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"seed_state must be an array of shape (78, 2) or (K, 78, 2): {e}") from None
    if seeds.ndim not in (2, 3) or seeds.shape[-2:] != (N_NOTES, 2):
        raise ValueError(f"seed_state must have shape ({N_NOTES}, 2) or (K, {N_NOTES}, 2), "
                         f"got {seeds.shape}")
    if seeds.dtype.kind not in "biuf":
        raise ValueError(f"seed_state must hold the numbers 0 and 1, got dtype {seeds.dtype}")
    if seeds.dtype != np.bool_ and not np.all((seeds == 0) | (seeds == 1)):
        raise ValueError("seed_state must hold only the values 0 and 1")
    single = seeds.ndim == 2
    return np.ascontiguousarray(seeds.reshape(-1, N_NOTES, 2), dtype=np.uint8), single


def _check_conservativity(conservativity):
    if isinstance(conservativity, (bool, np.bool_)) or not isinstance(
            conservativity, (int, float, np.integer, np.floating)):
        raise TypeError(f"conservativity must be a number, got {conservativity!r}")
    if not np.isfinite(conservativity) or conservativity <= 0:
        raise ValueError(f"conservativity must be a finite number > 0, got {conservativity}")
    return float(conservativity)


def _check_flag(value, what):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def _check_uniforms(uniforms, n_pieces, steps, single):
    """uniforms as float64 (K, steps, 78, 2), or a clear error."""
    expected = (steps, N_NOTES, 2) if single else (n_pieces, steps, N_NOTES, 2)
    uniforms = np.asarray(uniforms)
    if uniforms.shape != expected:
        raise ValueError(f"uniforms must have shape {expected} (steps, notes, [U1, U2]), "
                         f"got {uniforms.shape}")
    if uniforms.dtype.kind not in "iuf" or uniforms.dtype == np.float16:
        raise ValueError(f"uniforms must be float32 or float64 numbers, got dtype {uniforms.dtype}")
    uniforms = uniforms.astype(np.float64)
    if not np.all((uniforms >= 0) & (uniforms < 1)):  # also refuses NaN
        raise ValueError("uniforms must lie in [0, 1)")
    return uniforms.reshape(n_pieces, steps, N_NOTES, 2)


def _draw_uniforms(rng, n_pieces, steps, single):
    """(K, steps, 78, 2) float64 from rng.random: (steps, 78, 2) for one seed, so one piece
    gets the same uniforms from the same rng whether given as (78, 2) or (1, 78, 2)."""
    rng = as_generator(rng)
    shape = (steps, N_NOTES, 2) if single else (n_pieces, steps, N_NOTES, 2)
    return rng.random(shape).reshape(n_pieces, steps, N_NOTES, 2)


def _check_trace(trace, n_pieces, steps):
    """A backend's ComposeTrace has the shapes compose promises, or RuntimeError."""
    expected = (n_pieces, steps + 1, N_NOTES, 2)
    states = getattr(trace, "states", None)
    if getattr(states, "shape", None) != expected or states.dtype != np.uint8:
        raise RuntimeError(f"the backend returned states of shape {getattr(states, 'shape', None)}, "
                           f"expected {expected} uint8")


# ----------------------------------------------------------------------------- command line


MAX_STEPS = DEFAULT_MAX_STEPS  # --steps: the reader's default cut; (steps, 78, 2) uniforms of 125 MB
MAX_COUNT = 1000  # --count


def build_parser():
    ap = cli.ArgumentParser(prog="python -m biaxial_cu.generate",
                            description="Compose with a trained model (MODEL_SPEC section 7).")
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default="piece.mid", type=cli.file_name,
                    help="MIDI file, overwritten if it exists (default piece.mid); with --count K: "
                         "NAME_0.mid ... NAME_{K-1}.mid. Beside each, its piano roll (.png) and with "
                         "--wav its audio (.wav): same name, other suffix; an --out ending .png or "
                         ".wav, or one that would overwrite the checkpoint or a seed piece, is refused")
    ap.add_argument("--steps", type=cli.int_in(0, MAX_STEPS), default=128 * 10,
                    help=f"steps to compose after the seed (0..{MAX_STEPS}, default 1280)")
    ap.add_argument("--count", type=cli.int_in(1, MAX_COUNT), default=1,
                    help=f"pieces composed at once (1..{MAX_COUNT})")
    ap.add_argument("--seed", type=cli.int_at_least(0), default=0,
                    help="random seed (seed state and uniforms), >= 0")
    seed = ap.add_mutually_exclusive_group()
    seed.add_argument("--seed-from", metavar="DIR", type=cli.existing_folder,
                      help="seed from step 0 of a random segment of a piece in DIR (default: the "
                           "shipped corpus)")
    seed.add_argument("--silent-seed", action="store_true", help="start from a silent step")
    ap.add_argument("--conservativity", type=cli.float_in(0, math.inf, low_open=True, high_open=True),
                    default=1.0, help="a finite number > 0 (default 1)")
    ap.add_argument("--no-adaptive", action="store_true", help="keep conservativity fixed")
    ap.add_argument("--backend", choices=["auto", "cuda", "numpy"], default="auto")
    ap.add_argument("--meter", type=meter_arg, default=None,
                    help="compose in this meter, e.g. 3/4 or 6/8: the beat inputs follow its bars from the "
                         "seed (a downbeat), the MIDI file gets its time signature and the PNG its bar lines "
                         "(default: the original's rule, 4/4 counted from the seed, no time signature)")
    ap.add_argument("--no-png", action="store_true", help="no piano-roll PNG")
    ap.add_argument("--wav", action="store_true",
                    help=f"also render WAV, peak at {WAV_PEAK_DBFS:g} dBFS (fluidsynth + a General MIDI "
                         "soundfont, checked before any work)")
    return ap


def meter_arg(text):
    """An argparse type: a meter such as 3/4, checked by midi.parse_meter."""
    try:
        return "/".join(map(str, midi.parse_meter(text)))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_paths(a):
    """[(midi, png or None, wav or None)] per piece for parsed arguments, checked before any work:
    distinct files (a MIDI never overwritten by its own picture or audio), none a folder, the
    checkpoint or an existing file of the seed folder; UsageError otherwise."""
    out = Path(a.out)
    if out.suffix.lower() in (".png", ".wav"):
        raise cli.UsageError(f"--out {a.out}: the MIDI file would be overwritten by its "
                             f"{out.suffix.lower()[1:].upper()} (written beside it with that "
                             "suffix); give a .mid name")
    midis = [out] if a.count == 1 else [out.with_name(f"{out.stem}_{k}{out.suffix}")
                                        for k in range(a.count)]
    pieces = [(m, None if a.no_png else m.with_suffix(".png"), m.with_suffix(".wav") if a.wav else None)
              for m in midis]
    seed_folder = None if a.silent_seed else (a.seed_from or shipped_corpus_dir())
    cli.check_outputs([p for triple in pieces for p in triple if p is not None],
                      inputs=[a.checkpoint], input_folders=[seed_folder])
    return pieces


def wav_unavailable_reason():
    """None when --wav can be rendered (fluidsynth on PATH and a General MIDI soundfont, as
    viz.render_wav needs), else one line saying what is missing and how to get it."""
    missing = [what for what, ok in zip(("fluidsynth (not on PATH)", "a General MIDI soundfont"), synthesizer())
               if not ok]
    if not missing:
        return None
    return (f"--wav needs fluidsynth and a General MIDI soundfont; missing {' and '.join(missing)}; "
            f"{SYNTH_INSTALL}; or leave out --wav")


def main(argv=None):
    a = build_parser().parse_args(argv)
    return cli.run(_main, a, lambda written: f"{len(written)} of {a.count} pieces ({summarize(written)})")


def _main(a, written):
    try:
        outputs = output_paths(a)
        missing = a.wav and wav_unavailable_reason()
        if missing:
            raise cli.UsageError(missing)
    except cli.UsageError as e:
        return cli.fail(e)
    try:
        model = Model.load(a.checkpoint, backend=a.backend)
        rng = np.random.default_rng(a.seed)
        if a.silent_seed:
            seeds = np.zeros((a.count, N_NOTES, 2), np.uint8)
        else:
            folder = a.seed_from or shipped_corpus_dir()
            report = load_pieces_report(folder, min_steps=1, meters=model.meters)  # read as the model learnt
            if not report.pieces:
                raise ValueError(f"no usable pieces to seed from in {folder}")
            seq_len = min(SEGMENT_LEN, *(len(p) for p in report.pieces.values()))
            seeds = np.stack([seed_from_pieces(report.pieces, rng, seq_len=seq_len, bars=report.bars)
                              for _ in range(a.count)])
        with warnings.catch_warnings(record=True) as caught:  # said as one line each, below
            warnings.simplefilter("always", UserWarning)
            composed = compose(model, seeds, a.steps, conservativity=a.conservativity,
                               adaptive=not a.no_adaptive, rng=rng, meter=a.meter)  # (K, steps+1, 78, 2)
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
    except (CheckpointError, ValueError, RuntimeError) as e:
        return cli.fail(e)
    for piece, (path, png, wav) in zip(composed, outputs):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_state_matrix(piece, path, meter=a.meter)
        written.append(path)
        if png is not None:
            bars = None if a.meter is None else midi.bar_positions([(0, bar_length(a.meter))], len(piece))
            piano_roll_png(piece, png, title=path.name + (f" in {a.meter}" if a.meter else ""), bar_positions=bars)
        if wav is not None:
            try:
                render_wav(path, wav)
            except subprocess.CalledProcessError as e:
                return cli.fail(f"fluidsynth could not render {wav} (exit {e.returncode}: "
                                f"{(e.stderr or b'').decode(errors='replace')[-300:]}); "
                                f"wrote {summarize(written)}")
            except OSError as e:
                return cli.fail(f"fluidsynth could not render {wav} ({e}); wrote {summarize(written)}")
        print(f"wrote {path} ({a.steps} steps, backend {model.backend})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
