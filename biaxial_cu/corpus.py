"""Export the shipped training corpus: Bach chorales from the music21 corpus, as MIDI files; and,
as an option, pieces in other meters for a mixed-meter folder.

    python -m biaxial_cu.corpus --out biaxial_cu/corpus_midi --count 60
    python -m biaxial_cu.corpus --out mixed --count 60 --meters 3/4,6/8 --per-meter 20

Design: walk the chorales in Riemenschneider order (music21's chorale iterator, a fixed
order); leave out encodings that carry a copyright notice; keep those whose every time
signature is 4/4 or 2/4 (the beat features assume a duple meter, and the MIDI reader ends a
piece at any other meter); write each with music21's own multi-track MIDI export (repeats
expanded, one track per voice); and check the written file with our reader: it must read
without a warning and give at least MIN_STEPS steps, otherwise it is dropped. Stop after
`count` files. Names come from the corpus file name (`bach/bwv253` -> `bwv253.mid`), so the
choice and the names are the same on every run.

Other meters (--meters, for the reader's meters="all" mode, MODEL_SPEC section 8): for each
meter, up to --per-meter pieces whose every time signature is that meter, taken first from the
chorales (Riemenschneider order), then from the other works of music21's corpus with at least
two parts (in order of corpus path; a folder's works are named by their path,
`haydn/opus1no1/movement1.mxl` -> `haydn_opus1no1_movement1.mid`). music21's metadata cache
picks the candidates; each is parsed and its meters checked again. Same copyright rule; each is
rendered by music21's MIDI export, read with meters="all" (no warning, at least MIN_STEPS steps,
bars of the meter from step 0), and written with write_state_matrix(S, meter=...): one track,
one time signature at step 0. As in music21's export, bar 1 starts at the first note, so a
piece that opens with a pickup has its bar lines that many steps late (as the shipped 4/4
chorales do).

music21 is only needed here (the `corpus` extra), so it is imported on first use.
"""
import argparse
import contextlib
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .midi import bar_steps, parse_meter, read_state_matrix, write_state_matrix

DUPLE_METERS = ("4/4", "2/4")
MIN_STEPS = 128
DEFAULT_COUNT = 60
DEFAULT_PER_METER = 20  # pieces per meter of --meters
MIN_PARTS = 2  # works other than chorales: at least this many parts (no lone melodies)
SCORE_SUFFIXES = (".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mid", ".midi")


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
    """'bach/bwv248.12-2' -> 'bwv248.12-2.mid' (a chorale keeps its file's name);
    'haydn/opus1no1/movement1.mxl' -> 'haydn_opus1no1_movement1.mid' (other works join their
    folders); characters other than letters, digits, '.', '-' and '_' become '_'."""
    stem = corpus_name
    for suffix in SCORE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    folder, _, name = stem.rpartition("/")
    if folder and folder != "bach":
        name = stem.replace("/", "_")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".mid"


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
        score = parse_free(name, music21, log)
        if score is None:
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


def parse_free(name, music21, log):
    """The music21 score of a corpus work, or None (said) when its encoding carries a copyright
    notice."""
    score = music21.corpus.parse(name)
    notice = copyright_notice(score)
    if notice:
        log(f"    skipped {name}: the encoding carries a copyright notice ({notice})")
        return None
    return score


def export_meter(out_dir, meter, count=DEFAULT_PER_METER, log=print, taken=()):
    """Write up to `count` pieces whose every time signature is `meter` ("3/4", (6, 8)) into
    out_dir, each with that time signature at step 0; return their paths in order. taken:
    paths already written (by another meter or the chorale export), not written again."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    numerator, denominator = parse_meter(meter)
    meter_text = f"{numerator}/{denominator}"
    music21 = import_music21()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    taken = set(taken)
    written = []
    for name in pieces_in_meter(music21, meter_text):
        if len(written) == count:
            break
        target = out_dir / file_name_of(name)
        if target in taken:  # listed twice, or another encoding of a work already written
            continue
        score = parse_free(name, music21, log)
        if score is None:
            continue
        if meters_of(score, music21) != meter_text:
            log(f"    skipped {name}: meter {meters_of(score, music21)}")
            continue
        steps, problem = write_with_meter(score, target, (numerator, denominator), music21)
        if problem:
            log(f"    dropped {name}: {problem}")
            continue
        written.append(target)
        taken.add(target)
        log(f"{len(written):3d} {target.name} ({meter_text}): {steps} steps")
    if len(written) < count:
        log(f"only {len(written)} pieces in {meter_text} qualified (asked for {count})")
    return written


def pieces_in_meter(music21, meter_text):
    """Corpus names whose metadata lists only `meter_text` as time signature: the chorales in
    Riemenschneider order, then other single works of at least MIN_PARTS parts in path order."""
    chorales, others = {}, []
    bundle = music21.corpus.corpora.CoreCorpus().metadataBundle
    # search first: a bundle's iteration copies its whole list per entry (slow on 15000)
    for entry in bundle.search(meter_text, "timeSignatureFirst"):
        metadata = entry.metadata
        signatures = getattr(metadata, "timeSignatures", None) if metadata else None
        if not signatures or any(signature != meter_text for signature in signatures):
            continue
        path = str(entry.sourcePath).replace(os.sep, "/")
        if path.startswith("bach/"):
            chorales[path.rsplit(".", 1)[0]] = path
        elif entry.number is None and (metadata.numberOfParts or 0) >= MIN_PARTS:
            others.append(path)
    in_order = [name for name in chorale_names(music21) if name in chorales]
    return in_order + sorted(set(others))


@contextlib.contextmanager
def temporary_beside(target):
    """The path of a new empty .mid file in target's folder, removed afterwards unless it has
    been moved to target."""
    handle, temporary = tempfile.mkstemp(suffix=".mid", dir=target.parent)
    os.close(handle)
    try:
        yield temporary
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def music21_midi(score, path, music21):
    """Write score as MIDI to path (repeats expanded, one track per part); None, or why not."""
    try:
        score.write("midi", fp=path)
    except music21.exceptions21.Music21Exception as e:
        return f"music21 cannot write it as MIDI ({type(e).__name__}: {e})"
    return None


def write_with_meter(score, target, meter, music21):
    """Write score to target with write_state_matrix(S, meter=meter), S read with meters="all"
    from music21's MIDI export, if that reads cleanly with bars of the meter from step 0.

    Returns (steps, None) when written, (None, reason) when not.
    """
    with temporary_beside(target) as rendered, temporary_beside(target) as temporary:
        problem = music21_midi(score, rendered, music21)
        if problem:
            return None, problem
        S, problem = read_in_meter(rendered, meter)
        if problem:
            return None, problem
        write_state_matrix(S, temporary, meter=meter)
        written_S, problem = read_in_meter(temporary, meter)
        if problem:
            return None, problem
        # the writer releases notes still sounding at the end one step later (MODEL_SPEC 1)
        if (written_S.shape[0] - S.shape[0] not in (0, 1)
                or not np.array_equal(written_S[:S.shape[0]], S)):
            return None, "the written file does not read back as the same roll"
        os.replace(temporary, target)
        return written_S.shape[0], None


def read_in_meter(path, meter):
    """(S, None) of a file read with meters="all" whose bars are all of the meter from step 0,
    else (None, the reason) (warnings count as failures)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        S, pos = read_state_matrix(path, meters="all", return_bar_positions=True)  # (T, 78, 2)
    if caught:
        return None, f"reading back warned: {caught[0].message}"
    if S.shape[0] < MIN_STEPS:
        return None, f"too short: {S.shape[0]} steps < {MIN_STEPS}"
    bar = bar_steps(*meter)
    if not np.array_equal(pos, np.arange(S.shape[0]) % bar):
        return None, f"its MIDI export has bars other than {bar} steps from step 0"
    return S, None


def write_checked(score, target, music21):
    """Write score as MIDI to target (atomically) if it reads back cleanly.

    Returns (steps, None) when written, (None, reason) when not.
    """
    with temporary_beside(target) as temporary:
        problem = music21_midi(score, temporary, music21)
        if problem:
            return None, problem
        steps, problem = check_written_file(temporary)
        if problem is None:
            os.replace(temporary, target)
        return steps, problem


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m biaxial_cu.corpus",
        description="Export Bach chorales in 4/4 or 2/4 from the music21 corpus as MIDI files; "
                    "with --meters, also pieces in other meters.")
    parser.add_argument("--out", required=True, help="folder to write the .mid files into")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"how many chorales in 4/4 or 2/4 to write (default {DEFAULT_COUNT};"
                             " 0 with --meters: none)")
    parser.add_argument("--meters", default="",
                        help="also write pieces in these meters, comma-separated, e.g. 3/4,6/8 "
                             "(each with its time signature in the file, for meters='all')")
    parser.add_argument("--per-meter", type=int, default=DEFAULT_PER_METER,
                        help=f"pieces per meter of --meters (default {DEFAULT_PER_METER})")
    args = parser.parse_args(argv)
    meters = meters_argument(parser, args.meters)
    if args.count < 0 or (args.count == 0 and not meters):
        parser.error("--count must be >= 1 (or 0 with --meters)")
    if args.per_meter < 1:
        parser.error("--per-meter must be >= 1")
    written = {}  # meter -> paths
    try:
        if args.count:
            written["4/4 or 2/4"] = export_chorales(args.out, args.count)
        for numerator, denominator in meters:
            taken = [path for paths in written.values() for path in paths]
            written[f"{numerator}/{denominator}"] = export_meter(
                args.out, (numerator, denominator), args.per_meter, taken=taken)
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = [path for paths in written.values() for path in paths]
    total = sum(path.stat().st_size for path in paths)
    counts = ", ".join(f"{len(paths)} in {meter}" for meter, paths in written.items())
    print(f"wrote {len(paths)} files ({total / 1024:.0f} KiB) to {args.out}: {counts}")
    return 0


def meters_argument(parser, text):
    """[(numerator, denominator)] of --meters ('3/4,6/8'), in order, without repeats."""
    meters = []
    for part in filter(None, (part.strip() for part in text.split(","))):
        try:
            meter = parse_meter(part)
        except ValueError as e:
            parser.error(f"--meters: {e}")
        if meter not in meters:
            meters.append(meter)
    return meters


if __name__ == "__main__":
    sys.exit(main())
