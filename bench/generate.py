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
from common import environment, finish, load_peer, peer_result, peer_unavailable_reason  # noqa: E402

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
    ap.add_argument("--results-dir")
    a = ap.parse_args()
    sizes = ((16, 16), (8, 4)) if a.quick else ((300, 300), (100, 50))
    steps = 64 if a.quick else 1280
    result = {"benchmark": "generate", "environment": environment(), "config": {"sizes": sizes, "steps": steps}}
    result["numpy"] = {k: ours("numpy", k, steps, sizes) for k in ((1, 2) if a.quick else (1, 8))}
    reason = cuda_unavailable_reason()
    result["cuda"] = {"skipped": reason} if reason else {k: ours("cuda", k, steps, sizes) for k in (1, 64)}
    reason = peer_unavailable_reason(a.peer)
    if reason:
        result["peer"] = {"skipped": reason}
    else:
        peer = load_peer(a.peer)
        result["peer"] = {k: peer_result(peer, "generate", steps=steps, pieces=k) for k in (1, 64)}
    finish("generate", result, a.results_dir)


if __name__ == "__main__":
    main()
