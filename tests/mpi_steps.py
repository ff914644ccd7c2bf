"""Run k data-parallel training steps of a small model: `mpirun -n N python tests/mpi_steps.py OUT
DTYPE STEPS [BACKEND]`. Rank 0 writes the parameters to OUT (.npz). Without an MPI launcher it
trains in one process (distributed.Solo), the reference the ranks' result is compared with
(tests/test_distributed.py). BACKEND: numpy (default); cuda (gradients summed by NCCL, even on
one rank); cuda-host (the device gradients summed by MPI through a host copy)."""
import sys

import numpy as np

from biaxial_cu.common import to_host
from biaxial_cu.data import sample_batch
from biaxial_cu.distributed import world
from biaxial_cu.model import Model

SIZES = dict(t_layer_sizes=(12, 10), p_layer_sizes=(8, 6), dropout=0.5)
BATCH, SEQ_LEN = 5, 24  # 5 rows: 2 ranks get 2 and 3


def pieces():
    """Three random piano rolls (T, 78, 2): played notes, a third of them struck."""
    rng = np.random.default_rng(0)
    out = {}
    for i, steps in enumerate((40, 56, 64)):
        play = rng.random((steps, 78)) < 0.1
        out[f"piece{i}"] = np.stack([play, play & (rng.random((steps, 78)) < 0.3)], axis=-1).astype(np.uint8)
    return out


def train(dtype, steps, ranks, backend):
    if backend != "numpy":
        ranks.choose_gpu()
    model = Model(**SIZES, backend=backend.split("-")[0], dtype=dtype, seed=1)
    if backend == "cuda":
        ranks.connect_gpus()
    music = pieces()
    for i in range(1, steps + 1):
        model.train_step(sample_batch(music, BATCH, SEQ_LEN, np.random.default_rng([3, i])),
                         ranks=ranks if ranks.size > 1 or backend != "numpy" else None)
    return model


def main(out, dtype, steps, backend="numpy"):
    ranks = world()
    model = train(dtype, int(steps), ranks, backend)
    if ranks.is_root:
        np.savez(out, **{name: to_host(p) for name, p in model.params.items()})


if __name__ == "__main__":
    main(*sys.argv[1:])
