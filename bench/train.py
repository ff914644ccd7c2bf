"""Time per training batch (forward + backward + Adadelta): ours (cuda), the PyTorch cuDNN peer,
and the NumPy reference, in one process on one machine.

    python bench/train.py --peer peers/torch_biaxial.py          # on a GPU machine
    python bench/train.py --quick                                # CPU only, seconds

The peer file is run unchanged, imported into this process (common.peer_result), and its JSON
recorded as its command line would print it.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ResultFile, environment, finish, load_peer, peak_fractions, peer_result,  # noqa: E402
                    peer_unavailable_reason, time_calls, train_flops)

from biaxial_cu import Model  # noqa: E402
from biaxial_cu.backends.cuda import cuda_unavailable_reason  # noqa: E402
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir  # noqa: E402


def tf32_gemms(on):
    """CuPy's compute type for float32 GEMMs: TF32 tensor cores or plain fp32 (what the
    CUPY_TF32=1 environment variable selects at start-up). Our kernels are fp32 either way."""
    from cupy._core import _routines_linalg as linalg

    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if on else linalg.COMPUTE_TYPE_DEFAULT)


def ours(backend, batch, seq_len, iters, sizes, device=None):
    pieces = load_pieces(shipped_corpus_dir())
    model = Model(*sizes, backend=backend, seed=0)
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
    ap.add_argument("--results-dir", default=None)
    a = ap.parse_args()
    sizes = ((16, 16), (8, 4)) if a.quick else ((300, 300), (100, 50))
    seq_len = 16 if a.quick else 128
    result = {"benchmark": "train", "environment": environment(), "config": {"sizes": sizes, "seq_len": seq_len}}
    file = ResultFile("train", result, a.results_dir)  # rewritten after each part
    result["numpy"] = ours("numpy", 2 if a.quick else 10, seq_len, 2 if a.quick else 3, sizes)
    file.save()
    reason = cuda_unavailable_reason()
    batches = [int(b) for b in a.batches.split(",")]
    for name, tf32 in (("cuda", False), ("cuda-tf32-gemms", True)):  # the peer's cuDNN uses TF32
        result[name] = {"skipped": reason} if reason else {}
        for b in batches if not reason else ():
            tf32_gemms(tf32)
            result[name][b] = ours("cuda", b, seq_len, a.iters, sizes, result["environment"]["device"])
            tf32_gemms(False)
            file.save()
    reason = peer_unavailable_reason(a.peer)
    result["peer"] = {"skipped": reason} if reason else {}
    if not reason:
        if "skipped" not in result["cuda"]:
            import cupy

            cupy.get_default_memory_pool().free_all_blocks()  # the peer gets the whole GPU
        peer = load_peer(a.peer)
        # torch.compile takes minutes per shape: that mode runs last, at the first batch size only
        for mode, b in [(mode, b) for mode in ("eager", "graph") for b in batches] + [("compile", batches[0])]:
            result["peer"][f"{mode}-{b}"] = peer_result(peer, "train", batch=b, seq_len=seq_len, iters=a.iters,
                                                       mode=mode)
            file.save()
    finish("train", result, file=file)


if __name__ == "__main__":
    main()
