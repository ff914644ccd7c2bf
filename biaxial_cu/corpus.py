"""Export the shipped training corpus: Bach chorales from the music21 corpus, as MIDI files.

    python -m biaxial_cu.corpus --out biaxial_cu/corpus_midi --count 60

Design: walk the chorales in Riemenschneider order (music21's chorale iterator, a fixed
order); leave out encodings that carry a copyright notice; keep those whose every time
signature is 4/4 or 2/4 (the beat features assume a duple meter, and the MIDI reader ends a
piece at any other meter); write each with music21's own multi-track MIDI export (repeats
expanded, one track per voice); and check the written file with our reader: it must read
without a warning and give at least MIN_STEPS steps, otherwise it is dropped. Stop after
`count` files. Names come from the corpus file name (`bach/bwv253` -> `bwv253.mid`), so the
choice and the names are the same on every run.

music21 is only needed here (the `corpus` extra), so it is imported on first use.
"""
import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

from .midi import read_state_matrix

DUPLE_METERS = ("4/4", "2/4")
MIN_STEPS = 128
DEFAULT_COUNT = 60


def import_music21():
    """The music21 module, or an ImportError that says how to install it."""
    try:
        import music21
    except ImportError as e:
        raise ImportError(
            "exporting the corpus needs music21, which is not installed: "
            "pip install 'biaxial_cu[corpus]' (or pip install music21)"
        ) from e
    return music21


def chorale_names(music21):
    """Corpus names of all chorales in Riemenschneider order, e.g. 'bach/bwv269'."""
    return list(music21.corpus.chorales.Iterator(returnType="filename"))


def copyright_notice(score):
    """The encoding's copyright notice, or '' when it has none (Bach's works themselves are
    public domain; a few Humdrum encodings in music21's corpus carry a notice of their own)."""
    metadata = score.metadata
    notice = metadata.copyright if metadata is not None else None
    return str(notice).strip() if notice else ""


def has_duple_meter_throughout(score, music21):
    """True when the score has time signatures and every one of them is 4/4 or 2/4."""
    signatures = list(score.recurse().getElementsByClass(music21.meter.TimeSignature))
    return bool(signatures) and all(ts.ratioString in DUPLE_METERS for ts in signatures)


def meters_of(score, music21):
    """The distinct time signatures of a score, in order of first use, e.g. '3/4' or '4/4, 3/4'."""
    seen = []
    for ts in score.recurse().getElementsByClass(music21.meter.TimeSignature):
        if ts.ratioString not in seen:
            seen.append(ts.ratioString)
    return ", ".join(seen) or "none"


def file_name_of(corpus_name):
    """'bach/bwv248.12-2' -> 'bwv248.12-2.mid'."""
    return corpus_name.rsplit("/", 1)[-1] + ".mid"


def check_written_file(path):
    """Steps of a written file, or the reason it is not usable (warnings count as failures)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        S = read_state_matrix(path)  # (T, 78, 2)
    if caught:
        return None, f"reading back warned: {caught[0].message}"
    if S.shape[0] < MIN_STEPS:
        return None, f"too short: {S.shape[0]} steps < {MIN_STEPS}"
    return S.shape[0], None


def export_chorales(out_dir, count=DEFAULT_COUNT, log=print):
    """Write up to `count` duple-meter chorales into out_dir; return their paths in order."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    music21 = import_music21()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in chorale_names(music21):
        if len(written) == count:
            break
        target = out_dir / file_name_of(name)
        if target in written:  # a chorale listed twice
            continue
        score = music21.corpus.parse(name)
        notice = copyright_notice(score)
        if notice:
            log(f"    skipped {name}: the encoding carries a copyright notice ({notice})")
            continue
        if not has_duple_meter_throughout(score, music21):
            log(f"    skipped {name}: meter {meters_of(score, music21)}")
            continue
        steps, problem = write_checked(score, target, music21)
        if problem:
            log(f"    dropped {name}: {problem}")
            continue
        written.append(target)
        log(f"{len(written):3d} {target.name}: {steps} steps")
    if len(written) < count:
        log(f"only {len(written)} chorales qualified (asked for {count})")
    return written


def write_checked(score, target, music21):
    """Write score as MIDI to target (atomically) if it reads back cleanly.

    Returns (steps, None) when written, (None, reason) when not.
    """
    handle, temporary = tempfile.mkstemp(suffix=".mid", dir=target.parent)
    os.close(handle)
    try:
        try:
            score.write("midi", fp=temporary)  # expands repeats, one track per part
        except music21.exceptions21.Music21Exception as e:
            return None, f"music21 cannot write it as MIDI ({type(e).__name__}: {e})"
        steps, problem = check_written_file(temporary)
        if problem is None:
            os.replace(temporary, target)
        return steps, problem
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m biaxial_cu.corpus",
        description="Export Bach chorales in 4/4 or 2/4 from the music21 corpus as MIDI files.")
    parser.add_argument("--out", required=True, help="folder to write the .mid files into")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"how many chorales to write (default {DEFAULT_COUNT})")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be >= 1")
    try:
        written = export_chorales(args.out, args.count)
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(path.stat().st_size for path in written)
    print(f"wrote {len(written)} files ({total / 1024:.0f} KiB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
