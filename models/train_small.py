"""Train the small CPU model committed in models/chorales-small/ (issue 10: no GPU was lent).

    python models/train_small.py --minutes 40

Shipped corpus, 10% of pieces held out (split_pieces seed 0), batches of 10 x 128 as in the
original, dropout 0.5, Adadelta; a checkpoint and a log line every 50 batches.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from biaxial_cu import Model
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir, split_pieces

OUT = Path(__file__).resolve().parent / "chorales-small"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--every", type=int, default=50)
    a = ap.parse_args()
    train, valid = split_pieces(load_pieces(shipped_corpus_dir()), 0.1, seed=0)
    model = Model((100, 100), (50, 25), dropout=0.5, backend="numpy", seed=0)
    val_batches = [sample_batch(valid, 10, 128, np.random.default_rng([0, i])) for i in range(2)]
    note_steps = 10 * 127 * 78
    OUT.mkdir(exist_ok=True)
    start, losses = time.time(), []
    with open(OUT / "log.jsonl", "w") as log:
        batch = 0
        while time.time() - start < a.minutes * 60:
            losses.append(model.train_step(sample_batch(train, 10, 128, np.random.default_rng([1, batch]))))
            batch += 1
            if batch % a.every == 0:
                val = np.mean([model.loss(b) for b in val_batches]) / note_steps
                row = {"batch": batch, "train_loss": float(np.mean(losses)) / note_steps,
                       "val_loss": float(val), "seconds": round(time.time() - start, 1)}
                log.write(json.dumps(row) + "\n")
                log.flush()
                losses = []
                model.save(OUT / "model.npz")
                print(row, flush=True)


if __name__ == "__main__":
    main()
