"""Load time of a corpus folder (default: the shipped corpus).  python bench/midi.py [FOLDER]"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, finish, time_calls  # noqa: E402

from biaxial_cu.data import load_pieces_report, shipped_corpus_dir  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--results-dir")
    a = ap.parse_args()
    folder = Path(a.folder) if a.folder else shipped_corpus_dir()
    report = load_pieces_report(folder)
    r = time_calls(lambda: load_pieces_report(folder), a.iters, warmup=1)
    files = len(report.pieces) + len(report.skipped)
    r.update(files=files, pieces=len(report.pieces), steps=report.total_steps,
             ms_per_dozen_files=r["median_ms"] / files * 12)
    print(f"{files} files, {report.total_steps} steps: {r['median_ms']:.0f} ms, {r['ms_per_dozen_files']:.0f} ms per dozen")
    finish("midi", {"benchmark": "midi", "environment": environment(), "folder": folder.name, **r}, a.results_dir)


if __name__ == "__main__":
    main()
