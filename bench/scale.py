"""Data-parallel throughput: batches and note-steps per second at 1..N ranks.

    python bench/scale.py [--ranks 1,2] [--backend numpy|cuda] [--quick]

Each rank count runs as `mpirun -n N python bench/scale.py --worker ...`: every rank trains the
same global batches (the original 10 x 128, [300,300], [100,50], fp32) through
Model.train_step(ranks=...), as `python -m biaxial_cu.train` does under mpirun, and rank 0 times
--iters batches after a warm-up (the all-reduce included: rank 0 finishes a step only when every
rank has sent its gradients). On the numpy backend each rank gets cores / N BLAS threads; the
1-rank run is also timed with 1 thread, to tell the ranks' gain from the threads'. On a GPU
machine use --backend cuda --ranks 1,2,...,G: one GPU per rank, gradients summed by NCCL.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, finish  # noqa: E402

from biaxial_cu.common import N_NOTES  # noqa: E402

ORIGINAL = {"t": (300, 300), "p": (100, 50), "batch": 10, "seq_len": 128}
QUICK = {"t": (32, 32), "p": (16, 8), "batch": 4, "seq_len": 32}


def worker(a):
    """Under mpirun: time a.iters training batches; rank 0 prints one JSON line."""
    import numpy as np

    from biaxial_cu.data import sample_batch, shipped_corpus_dir, load_pieces
    from biaxial_cu.distributed import world
    from biaxial_cu.model import Model

    shape = QUICK if a.quick else ORIGINAL
    ranks = world()
    if a.backend == "cuda":
        ranks.choose_gpu()
    model = Model(shape["t"], shape["p"], backend=a.backend, seed=0)
    if a.backend == "cuda":
        ranks.connect_gpus()
    pieces = load_pieces(shipped_corpus_dir(), min_steps=shape["seq_len"])

    def step(i):
        batch = sample_batch(pieces, shape["batch"], shape["seq_len"], np.random.default_rng([0, i]))
        model.train_step(batch, ranks=ranks if ranks.size > 1 else None)

    step(0)  # warm-up: kernels compiled, buffers made
    started = time.perf_counter()
    for i in range(1, a.iters + 1):
        step(i)
    seconds = (time.perf_counter() - started) / a.iters
    if ranks.is_root:
        note_steps = shape["batch"] * (shape["seq_len"] - 1) * N_NOTES
        print(json.dumps({"ranks": ranks.size, "seconds_per_batch": seconds, "batches_per_s": 1 / seconds,
                          "note_steps_per_s": note_steps / seconds, "iters": a.iters}))


def launch(a, n, threads):
    """One rank count: {ranks, threads, seconds_per_batch, ...} or {"failed": ...}."""
    mpirun = Path(sys.executable).parent / "mpirun"
    command = [str(mpirun) if mpirun.exists() else "mpirun", "-n", str(n), sys.executable, __file__, "--worker",
               "--backend", a.backend, "--iters", str(a.iters)] + (["--quick"] if a.quick else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    r = subprocess.run(command, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"ranks": n, "threads": threads, "failed": (r.stderr or r.stdout)[-2000:]}
    return {"threads_per_rank": threads, **json.loads(r.stdout.strip().splitlines()[-1])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", default="1,2", help="rank counts, e.g. 1,2,4,8")
    ap.add_argument("--backend", choices=["numpy", "cuda"], default="numpy")
    ap.add_argument("--iters", type=int, default=None, help="timed batches (default 3 numpy, 20 cuda)")
    ap.add_argument("--quick", action="store_true", help="a small model (seconds on a CPU)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--results-dir")
    a = ap.parse_args()
    a.iters = a.iters or (3 if a.backend == "numpy" else 20)
    if a.worker:
        return worker(a)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    runs = []
    for n in map(int, a.ranks.split(",")):
        threads = max(1, cores // n) if a.backend == "numpy" else 1
        for t in [threads] + ([1] if a.backend == "numpy" and n == 1 and threads > 1 else []):
            runs.append(launch(a, n, t))
            print(json.dumps(runs[-1])[:300], flush=True)
    base = next((r for r in runs if r.get("ranks") == 1 and "failed" not in r), None)  # all the cores
    for r in runs:
        if base and "failed" not in r:
            r["speedup_vs_1_rank"] = base["seconds_per_batch"] / r["seconds_per_batch"]
    shape = QUICK if a.quick else ORIGINAL
    finish("scale", {"benchmark": "scale", "environment": environment(), "backend": a.backend, "cores": cores,
                     "config": {k: list(v) if isinstance(v, tuple) else v for k, v in shape.items()},
                     "quick": a.quick, "runs": runs}, a.results_dir)


if __name__ == "__main__":
    main()
