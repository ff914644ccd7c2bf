"""Generation time for 1280 steps, 1 piece and 64 pieces: ours (cuda, numba CPU) and the peer.

    python bench/generate.py --peer peers/torch_biaxial.py       # on a GPU machine
    python bench/generate.py --quick                             # CPU only
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ResultFile, environment, finish, load_peer, peer_result, peer_unavailable_reason,  # noqa: E402
                    recorded, skip_reason)

from biaxial_cu import Model  # noqa: E402
from biaxial_cu.backends.cuda import cuda_unavailable_reason  # noqa: E402
from biaxial_cu.generate import compose  # noqa: E402


def ours(backend, pieces, steps, sizes):
    model = Model(*sizes, backend=backend, seed=0)
    seeds = np.zeros((pieces, 78, 2), np.uint8)
    compose(model, seeds, 3, rng=0)  # compile / warm up
    t = time.perf_counter()
    compose(model, seeds, steps, rng=0)
    total = time.perf_counter() - t
    return {"pieces": pieces, "steps": steps, "total_s": total, "ms_per_step": total * 1e3 / steps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--peer")
    ap.add_argument("--parts", default="numpy,cuda,peer", help="which of numpy, cuda, peer to run")
    ap.add_argument("--pieces", default="1,64", help="pieces at once, for cuda and the peer")
    ap.add_argument("--numpy-pieces", default="1,8", help="pieces at once, for the numba CPU path")
    ap.add_argument("--results-dir")
    a = ap.parse_args()
    sizes = ((16, 16), (8, 4)) if a.quick else ((300, 300), (100, 50))
    steps = 64 if a.quick else 1280
    parts = a.parts.split(",")
    pieces = [int(k) for k in a.pieces.split(",")]
    numpy_pieces = (1, 2) if a.quick else [int(k) for k in a.numpy_pieces.split(",")]
    result = {"benchmark": "generate", "environment": environment(), "config": {"sizes": sizes, "steps": steps}}
    file = ResultFile("generate", result, a.results_dir)  # rewritten after each part
    # the peer first: a fault in our (newer) kernels cannot cost its numbers
    reason = skip_reason("peer", parts, lambda: peer_unavailable_reason(a.peer))
    result["peer"] = {"skipped": reason} if reason else {}
    peer = None if reason else load_peer(a.peer)
    for k in pieces if peer else ():
        result["peer"][k] = peer_result(peer, "generate", steps=steps, pieces=k)
        file.save()
    reason = skip_reason("cuda", parts, cuda_unavailable_reason)
    result["cuda"] = {"skipped": reason} if reason else {}
    for k in pieces if not reason else ():
        result["cuda"][k] = recorded(ours, "cuda", k, steps, sizes)
        file.save()
    if "numpy" in parts:
        result["numpy"] = {k: recorded(ours, "numpy", k, steps, sizes) for k in numpy_pieces}
    finish("generate", result, file=file)


if __name__ == "__main__":
    main()
