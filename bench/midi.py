"""Load time of MIDI folders, and the corpus cache on a big synthetic corpus.

    python bench/midi.py [FOLDER]            # a folder (default: the shipped corpus): parse, cached
    python bench/midi.py --synthetic [N]     # N files (default 10000) written here, then measured

The folder mode times load_pieces_report without the cache (every file parsed; the headline)
and with a cache in a temporary folder (once to build it, then --iters cached loads).

The synthetic mode writes N MIDI files into a temporary folder (or --corpus DIR, kept for the
next run) with midi.write_state_matrix: each a cut of 128..1024 steps from a shuffled chain of
the shipped chorales, transposed by -6..+6 semitones, so every file differs (seeded: the same
corpus every run). Then, each in a fresh process so that nothing is warm but the OS's file
cache: the first load into an empty cache folder with every core, again with 1 worker (unless
--no-serial), the cached start three times, and a load without the cache; for each the wall time
of load_pieces_report, the whole process's time (interpreter start and imports included), and
the peak resident memory of the loading process (VmHWM: after the imports, after the load, after
20 sample_batch calls; the workers' own memory is not counted), against the corpus's size as
uint8 piano rolls.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, finish, time_calls  # noqa: E402

from biaxial_cu.common import N_NOTES  # noqa: E402
from biaxial_cu.data import load_pieces_report, shipped_corpus_dir  # noqa: E402
from biaxial_cu.midi import read_state_matrix, write_state_matrix  # noqa: E402

MIN_STEPS, MAX_STEPS = 128, 1024  # a synthetic piece's length range
MAX_SHIFT = 6  # transposition range in semitones, either way
GOALS = {"first_load_s": 30.0, "cached_start_s": 2.0, "cached_peak_fraction_of_uint8": 0.10}

CHILD = r"""
import json, resource, sys, time, warnings
args = json.loads(sys.argv[1])


def peak_rss():
    # VmHWM: this process's own high-water mark (ru_maxrss would include the parent's at exec)
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


import numpy as np
from biaxial_cu.data import load_pieces_report, sample_batch
imported_rss = peak_rss()
warnings.simplefilter("ignore")
started = time.perf_counter()
report = load_pieces_report(args["folder"], workers=args["workers"], cache=args["cache"],
                            cache_dir=args["cache_dir"])
seconds = time.perf_counter() - started
load_rss = peak_rss()
rng = np.random.default_rng(0)
started = time.perf_counter()
for _ in range(20):
    sample_batch(report.pieces, 10, 128, rng)
batch_ms = (time.perf_counter() - started) / 20 * 1e3
print(json.dumps({"load_s": seconds, "files_read": report.files_read, "pieces": len(report.pieces),
                  "steps": report.total_steps, "files_skipped": len(report.skipped),
                  "imported_rss_bytes": imported_rss, "peak_rss_bytes": load_rss,
                  "sample_batch_ms": batch_ms, "after_batches_rss_bytes": peak_rss()}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--workers", type=int, help="worker processes (default: every core)")
    ap.add_argument("--synthetic", type=int, nargs="?", const=10000, metavar="N",
                    help="write N files (default 10000) and measure first and cached loads")
    ap.add_argument("--corpus", help="--synthetic: write the corpus here and keep it (reused "
                    "when it holds the same corpus)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-serial", action="store_true", help="--synthetic: skip the 1-worker first load")
    ap.add_argument("--results-dir")
    a = ap.parse_args()
    if a.synthetic is not None:
        synthetic(a)
    else:
        folder_mode(a)


# ----------------------------------------------------------------------------- a folder


def folder_mode(a):
    folder = Path(a.folder) if a.folder else shipped_corpus_dir()
    report = load_pieces_report(folder, workers=a.workers, cache=False)
    r = time_calls(lambda: load_pieces_report(folder, workers=a.workers, cache=False), a.iters, warmup=1)
    files = len(report.pieces) + len(report.skipped)
    r.update(files=files, pieces=len(report.pieces), steps=report.total_steps,
             ms_per_dozen_files=r["median_ms"] / files * 12, workers=a.workers)
    with tempfile.TemporaryDirectory(prefix="biaxial_cache_bench_") as cache_dir:
        started = time.perf_counter()
        load_pieces_report(folder, workers=a.workers, cache_dir=cache_dir)
        build_ms = (time.perf_counter() - started) * 1e3
        cached = time_calls(lambda: load_pieces_report(folder, workers=a.workers, cache_dir=cache_dir),
                            a.iters, warmup=0)
    r["cached"] = {"build_ms": build_ms, **cached}
    print(f"{files} files, {report.total_steps} steps: {r['median_ms']:.0f} ms, "
          f"{r['ms_per_dozen_files']:.0f} ms per dozen; cache: built in {build_ms:.0f} ms, "
          f"cached load {cached['median_ms']:.1f} ms")
    finish("midi", {"benchmark": "midi", "environment": environment(), "folder": folder.name, **r},
           a.results_dir)


# ----------------------------------------------------------------------------- synthetic


def synthetic(a):
    n_files = a.synthetic
    keep = a.corpus is not None
    corpus = Path(a.corpus) if keep else Path(tempfile.mkdtemp(prefix="biaxial_midi_corpus_"))
    scratch = Path(tempfile.mkdtemp(prefix="biaxial_midi_cache_"))
    try:
        written = write_corpus(corpus, n_files, a.seed)
        result = {"benchmark": "midi", "mode": "synthetic", "environment": environment(),
                  "folder": f"synthetic-{n_files}", "cores": cores(), "corpus": written,
                  "goals": GOALS}
        runs = {"first_load": (None, True, "first"), "first_load_serial": (1, True, "serial"),
                "cached_load": (None, True, "first"), "uncached_load": (None, False, None)}
        for name, (workers, cache, cache_name) in runs.items():
            if name == "first_load_serial" and a.no_serial:
                result[name] = {"skipped": "--no-serial"}
                continue
            repeats = 3 if name == "cached_load" else 1
            runs_of = [child_load(corpus, workers, cache, scratch / cache_name if cache else None)
                       for _ in range(repeats)]
            result[name] = summary_of(runs_of)
            print(f"{name}: {json.dumps(result[name])}", flush=True)
        add_headline(result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not keep:
            shutil.rmtree(corpus, ignore_errors=True)
    finish("midi", result, a.results_dir)


def write_corpus(corpus, n_files, seed):
    """Write (or find, from an earlier run with the same settings) the synthetic corpus; its facts."""
    recipe = {"files": n_files, "seed": seed, "min_steps": MIN_STEPS, "max_steps": MAX_STEPS,
              "max_shift": MAX_SHIFT, "source": "the shipped chorales"}
    marker = corpus / "corpus.json"
    if marker.exists() and json.loads(marker.read_text()).get("recipe") == recipe:
        print(f"reusing the corpus in {corpus}")
        return json.loads(marker.read_text())
    corpus.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    chunks = [range(k, min(k + 250, n_files)) for k in range(0, n_files, 250)]
    with ProcessPoolExecutor(cores()) as pool:
        steps = [s for part in pool.map(write_files, [(corpus, seed, c) for c in chunks]) for s in part]
    time.sleep(corpus_cache_racy_seconds())  # a corpus is older than that when a user loads it
    facts = {"recipe": recipe, "files": n_files, "steps_written": int(sum(steps)),
             "mean_steps_written": float(np.mean(steps)),
             "midi_bytes": sum(p.stat().st_size for p in corpus.glob("*.mid")),
             "write_s": time.perf_counter() - started}
    marker.write_text(json.dumps(facts))
    print(f"wrote {n_files} files ({facts['steps_written']} steps, {facts['midi_bytes'] / 2**20:.0f} "
          f"MiB of MIDI) in {facts['write_s']:.0f} s")
    return facts


def corpus_cache_racy_seconds():
    from biaxial_cu.corpus_cache import RACY_NS

    return RACY_NS / 1e9 + 0.1


def write_files(job):
    """Write the files of one chunk (in a worker): piece k from generator (seed, k)."""
    corpus, seed, indices = job
    sources = [read_state_matrix(p) for p in sorted(shipped_corpus_dir().glob("*.mid"))]
    lengths = []
    for k in indices:
        S = synthetic_piece(sources, np.random.default_rng([seed, k]))  # (T, 78, 2)
        write_state_matrix(S, corpus / f"piece{k:06d}.mid")
        lengths.append(S.shape[0])
    return lengths


def synthetic_piece(sources, rng):
    """A cut of MIN_STEPS..MAX_STEPS steps from a shuffled chain of sources, transposed."""
    length = int(rng.integers(MIN_STEPS, MAX_STEPS + 1))
    chain, total = [], 0
    while total < length + 64:
        piece = sources[rng.integers(len(sources))]
        chain.append(piece)
        total += piece.shape[0]
    rolled = np.concatenate(chain)  # (total, 78, 2)
    start = int(rng.integers(0, total - length + 1))
    S = rolled[start:start + length].copy()
    shift = int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1))
    S = np.roll(S, shift, axis=1)
    if shift > 0:
        S[:, :shift] = 0  # notes rolled round from the top are dropped, not wrapped
    elif shift < 0:
        S[:, shift:] = 0
    S[0, :, 1] = S[0, :, 0]  # a cut starts with its sounding notes struck
    return S


def child_load(corpus, workers, cache, cache_dir):
    """One load in a fresh process: its CHILD record plus the process's wall time."""
    args = {"folder": str(corpus), "workers": workers, "cache": cache,
            "cache_dir": str(cache_dir) if cache_dir else None}
    load_before = load_average()
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                         text=True, timeout=1800)
    if run.returncode:
        raise RuntimeError(f"the load failed: {run.stderr[-3000:]}")
    return {**json.loads(run.stdout.splitlines()[-1]), "process_s": time.perf_counter() - started,
            "load_average_before_after": [load_before, load_average()]}


def load_average():
    """The 1-minute load average: other work on the machine slows a measurement down."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def summary_of(runs):
    """The median load and process times and the largest peaks of runs of one kind."""
    out = {"runs": runs, "load_s": float(np.median([r["load_s"] for r in runs])),
           "process_s": float(np.median([r["process_s"] for r in runs]))}
    for key in ("peak_rss_bytes", "imported_rss_bytes", "after_batches_rss_bytes"):
        out[key] = max(r[key] for r in runs)
    out["files_read"] = runs[0]["files_read"]
    return out


def add_headline(result):
    """What summarize.py shows (files, median_ms: the first load), and the goals met or not."""
    first, cached = result["first_load"], result["cached_load"]
    files = result["corpus"]["files"]
    steps = first["runs"][0]["steps"]  # as read back: a written piece may gain its release step
    result["corpus"].update(steps=steps, uint8_bytes=steps * N_NOTES * 2)
    size = result["corpus"]["uint8_bytes"]
    result.update(files=files, median_ms=first["load_s"] * 1e3,
                  ms_per_dozen_files=first["load_s"] * 1e3 / files * 12)
    fraction = cached["peak_rss_bytes"] / size
    result["met"] = {"first_load_s": first["load_s"] < GOALS["first_load_s"],
                     "cached_start_s": cached["process_s"] < GOALS["cached_start_s"],
                     "cached_peak_fraction_of_uint8": fraction < GOALS["cached_peak_fraction_of_uint8"]}
    result["cached_peak_fraction_of_uint8"] = fraction
    print(f"{files} files, {size / 2**20:.0f} MiB as uint8: first load {first['load_s']:.1f} s "
          f"({cores()} workers), cached start {cached['load_s']:.2f} s in the load, "
          f"{cached['process_s']:.2f} s for the whole process, peak {cached['peak_rss_bytes'] / 2**20:.0f} "
          f"MiB = {100 * fraction:.1f}% of the uint8 corpus; goals met: {result['met']}")


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


if __name__ == "__main__":
    main()
