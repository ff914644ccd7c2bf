"""Time per training batch (forward + backward + Adadelta): ours (cuda), the PyTorch cuDNN peer,
and the NumPy reference, in one process on one machine.

    python bench/train.py --peer peers/torch_biaxial.py          # on a GPU machine
    python bench/train.py --quick                                # CPU only, seconds

The peer file is run unchanged, imported into this process (common.peer_result), and its JSON
recorded as its command line would print it.
"""
import argparse
import contextlib
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ResultFile, environment, finish, load_peer, peak_fractions, peer_result,  # noqa: E402
                    peer_unavailable_reason, recorded, skip_reason, time_calls, train_flops)

from biaxial_cu import Model  # noqa: E402
from biaxial_cu.backends.cuda.kernels import cuda_unavailable_reason, cublas_tf32  # noqa: E402
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir  # noqa: E402
from biaxial_cu.model import TF32_ENV  # noqa: E402


VARIANTS = {"cuda": "fp32", "cuda-tf32-gemms": "tf32-gemms", "cuda-tf32": "tf32"}  # result key: precision


def ours_cuda(batch, seq_len, iters, sizes, device, precision):
    """ours("cuda", ...) with precision "fp32"; "tf32-gemms": CuPy's cuBLAS GEMMs on TF32 (what
    CUPY_TF32=1 selects), our step kernels fp32; "tf32": Model(tf32=True), every matrix product
    of training on TF32 tensor cores (the peer's cuDNN uses TF32 by default)."""
    import cupy

    with cublas_tf32(cupy) if precision == "tf32-gemms" else contextlib.nullcontext():
        return ours("cuda", batch, seq_len, iters, sizes, device, tf32=precision == "tf32")


def ours(backend, batch, seq_len, iters, sizes, device=None, tf32=False):
    pieces = load_pieces(shipped_corpus_dir())
    model = Model(*sizes, backend=backend, seed=0, tf32=tf32)
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
    flops = train_flops(batch, seq_len, *sizes)
    r.update(batch=batch, seq_len=seq_len, flops=flops, tflops_per_s=flops / (r["median_ms"] * 1e-3) / 1e12)
    if backend == "cuda":
        r.update(peak_fractions(r["tflops_per_s"], device))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small model, CPU parts only")
    ap.add_argument("--peer", help="path to torch_biaxial.py")
    ap.add_argument("--batches", default="10,32,64")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--parts", default="numpy,cuda,peer", help="which of numpy, cuda, peer to run")
    ap.add_argument("--peer-modes", default="eager,graph,compile",
                    help="the peer's modes; compile (minutes per shape) runs at the first batch size only")
    ap.add_argument("--results-dir", default=None)
    a = ap.parse_args()
    os.environ.pop(TF32_ENV, None)  # each variant chooses its precision (Model's tf32); no override
    sizes = ((16, 16), (8, 4)) if a.quick else ((300, 300), (100, 50))
    seq_len = 16 if a.quick else 128
    parts, modes = a.parts.split(","), a.peer_modes.split(",")
    batches = [int(b) for b in a.batches.split(",")]
    result = {"benchmark": "train", "environment": environment(),
              "config": {"sizes": sizes, "seq_len": seq_len, "batches": batches, "parts": parts, "peer_modes": modes}}
    file = ResultFile("train", result, a.results_dir)  # rewritten after each part
    cuda_reason = skip_reason("cuda", parts, cuda_unavailable_reason)
    peer_reason = skip_reason("peer", parts, lambda: peer_unavailable_reason(a.peer))
    peer = None if peer_reason else load_peer(a.peer)
    for name in VARIANTS:
        result[name] = {"skipped": cuda_reason} if cuda_reason else {}
    result["peer"] = {"skipped": peer_reason} if peer_reason else {}
    # The peer first, every batch size: CuPy and torch share the GPU's context, so a fault in our
    # (newer) kernels would cost every number measured after it. Then ours (fp32, TF32 GEMMs, all
    # TF32), then the NumPy reference (CPU, a few batches: the slowest part, and known from CPU runs).
    for i, b in enumerate(batches):
        for mode in modes if peer else ():
            if mode != "compile" or i == 0:
                result["peer"][f"{mode}-{b}"] = peer_result(peer, "train", batch=b, seq_len=seq_len, iters=a.iters,
                                                           mode=mode)
                file.save()
    if peer and not cuda_reason:
        import torch

        torch.cuda.empty_cache()  # ours gets the GPU's memory back
    for b in batches if not cuda_reason else ():
        for name, precision in VARIANTS.items():
            result[name][b] = recorded(ours_cuda, b, seq_len, a.iters, sizes, result["environment"]["device"],
                                       precision)
            file.save()
    if "numpy" in parts:
        result["numpy"] = recorded(ours, "numpy", 2 if a.quick else batches[0], seq_len, 2, sizes)
        file.save()
    finish("train", result, file=file)


if __name__ == "__main__":
    main()
