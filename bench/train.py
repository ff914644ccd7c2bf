"""Time per training batch (forward + backward + Adadelta): ours (cuda), the PyTorch cuDNN peer,
and the NumPy reference, in one process on one machine.

    python bench/train.py --peer peers/torch_biaxial.py          # on a GPU machine
    python bench/train.py --quick                                # CPU only, seconds

The peer is run as it is (a subprocess per mode) and its JSON recorded verbatim.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, finish, peak_fractions, run_peer, time_calls, train_flops  # noqa: E402

from biaxial_cu import Model  # noqa: E402
from biaxial_cu.backends.cuda import cuda_unavailable_reason  # noqa: E402
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir  # noqa: E402


def ours(backend, batch, seq_len, iters, sizes, graphs=False):
    pieces = load_pieces(shipped_corpus_dir())
    model = Model(*sizes, backend=backend, seed=0)
    if graphs:
        model._impl.use_graphs = True  # as BIAXIAL_CU_CUDA_GRAPHS=1 does
    data = sample_batch(pieces, batch, seq_len, np.random.default_rng(0))
    sync = None
    if backend == "cuda":
        import cupy

        sync = cupy.cuda.Device().synchronize
        cupy.get_default_memory_pool().free_all_blocks()
    r = time_calls(lambda: model.train_step(data), iters, warmup=1 if backend == "numpy" else 3, sync=sync)
    if backend == "cuda":
        import cupy

        r["pool_bytes"] = int(cupy.get_default_memory_pool().total_bytes())  # high-water mark
        if graphs:
            r["graph_pool_bytes"] = sum(int(g.pool.total_bytes()) for g in model._impl._graphs.values())
            r["graphs_used"] = model._impl.use_graphs
    flops = train_flops(batch, seq_len, *sizes)
    r.update(batch=batch, seq_len=seq_len, flops=flops, tflops_per_s=flops / (r["median_ms"] * 1e-3) / 1e12)
    if backend == "cuda":
        r.update(peak_fractions(r["tflops_per_s"], environment().get("device")))
    return r


def peer(path, batch, seq_len, iters, mode):
    return run_peer([path, "train", "--batch", batch, "--seq-len", seq_len, "--iters", iters, "--mode", mode])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small model, CPU parts only")
    ap.add_argument("--peer", help="path to torch_biaxial.py")
    ap.add_argument("--batches", default="10,32,64")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--results-dir", default=None)
    a = ap.parse_args()
    sizes = ((16, 16), (8, 4)) if a.quick else ((300, 300), (100, 50))
    seq_len = 16 if a.quick else 128
    result = {"benchmark": "train", "environment": environment(), "config": {"sizes": sizes, "seq_len": seq_len}}
    result["numpy"] = ours("numpy", 2 if a.quick else 10, seq_len, 2 if a.quick else 3, sizes)
    reason = cuda_unavailable_reason()
    batches = [int(b) for b in a.batches.split(",")]
    result["cuda"] = {"skipped": reason} if reason else {b: ours("cuda", b, seq_len, a.iters, sizes) for b in batches}
    result["cuda-graphs"] = {"skipped": reason} if reason else {
        b: ours("cuda", b, seq_len, a.iters, sizes, graphs=True) for b in batches}
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not a.peer or not has_gpu:
        result["peer"] = {"skipped": "no --peer given" if not a.peer else "torch with a GPU is not available"}
    else:
        # torch.compile takes minutes per shape: that mode runs for the first batch size only
        runs = [(mode, b) for mode in ("eager", "graph") for b in batches] + [("compile", batches[0])]
        result["peer"] = {f"{mode}-{b}": peer(a.peer, b, seq_len, a.iters, mode) for mode, b in runs}
    finish("train", result, a.results_dir)


if __name__ == "__main__":
    main()
