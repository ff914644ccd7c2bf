"""Where the time of one training batch goes, per kernel, on the cuda backend.

    python bench/profile_batch.py [--batch 10] [--iters 5]       # on a GPU machine

Both precisions: "cuda" (fp32) and "cuda-tf32" (Model(tf32=True)).

Two views. "profiler": CuPy's kernels, cuBLAS's and our own all run in the process's one CUDA
context, so PyTorch's profiler (CUPTI underneath) sees every one of them (torch is used for
nothing else; skipped without it). "events": CUDA events around each launch of our own kernels,
no profiler needed. Each lists, per kernel name, launches per batch, GPU time per batch and its
share, and sets the GPU's busy time against the wall time of a batch: whether the host (Python
launching ~1,000 kernels a batch) or the GPU is the limit. (In the events view the busy time
counts our kernels only.) Without a GPU it writes a result that says so.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, failure, finish, recorded  # noqa: E402

from biaxial_cu import Model  # noqa: E402
from biaxial_cu.backends.cuda import cuda_unavailable_reason  # noqa: E402
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir  # noqa: E402
from biaxial_cu.model import TF32_ENV  # noqa: E402


def summarize_kernels(events, batches, wall_ms_per_batch):
    """events: (kernel name, GPU microseconds) for every launch over `batches` batches.

    Returns the per-kernel table (largest first) and the totals per batch.
    """
    table = {}
    for name, us in events:
        row = table.setdefault(name, {"kernel": name, "launches": 0, "gpu_us": 0.0})
        row["launches"] += 1
        row["gpu_us"] += us
    gpu_us = sum(row["gpu_us"] for row in table.values())
    rows = []
    for row in sorted(table.values(), key=lambda r: -r["gpu_us"]):
        rows.append({"kernel": row["kernel"], "launches_per_batch": row["launches"] / batches,
                     "gpu_ms_per_batch": row["gpu_us"] / batches / 1e3,
                     "us_per_launch": row["gpu_us"] / row["launches"],
                     "share": row["gpu_us"] / gpu_us if gpu_us else 0.0})
    gpu_ms = gpu_us / batches / 1e3
    totals = {"wall_ms_per_batch": wall_ms_per_batch, "gpu_busy_ms_per_batch": gpu_ms,
              "launches_per_batch": sum(r["launches"] for r in table.values()) / batches,
              "gpu_busy_fraction": gpu_ms / wall_ms_per_batch if wall_ms_per_batch else None}
    return rows, totals


def markdown(rows, totals, top=12):
    """The table bench/README.md quotes."""
    lines = [f"wall {totals['wall_ms_per_batch']:.2f} ms per batch, GPU busy {totals['gpu_busy_ms_per_batch']:.2f} ms "
             f"({100 * (totals['gpu_busy_fraction'] or 0):.0f}%), {totals['launches_per_batch']:.0f} launches",
             "", "| kernel | launches | ms per batch | us per launch | share |", "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows[:top]:
        name = r["kernel"] if len(r["kernel"]) <= 60 else r["kernel"][:57] + "..."
        lines.append(f"| `{name}` | {r['launches_per_batch']:.0f} | {r['gpu_ms_per_batch']:.3f} | "
                     f"{r['us_per_launch']:.1f} | {100 * r['share']:.1f}% |")
    return "\n".join(lines)


def kernel_events(prof):
    """(name, us) of every GPU activity (kernels, copies, sets) the torch profiler saw."""
    from torch.autograd import DeviceType

    return [(e.name, float(e.time_range.elapsed_us())) for e in prof.events() if e.device_type == DeviceType.CUDA]


def event_timed(backend):
    """Route every launch of our kernels through a pair of CUDA events; returns the list the
    launches append (name, start, end) to. No profiler needed, but it sees our kernels only:
    cuBLAS and CuPy's own kernels are the rest of the GPU's time."""
    import cupy

    records, inner = [], backend.kernel

    def kernel(module, name):
        fn = inner(module, name)

        def launch(grid, block, args):
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            fn(grid, block, args)
            end.record()
            records.append((name, start, end))
        return launch

    backend.kernel = kernel
    return records


def profile(batch_size, iters, tf32):
    import cupy

    model = Model(backend="cuda", seed=0, tf32=tf32)
    batch = sample_batch(load_pieces(shipped_corpus_dir()), batch_size, 128, np.random.default_rng(0))
    sync = cupy.cuda.Device().synchronize
    for _ in range(3):
        model.train_step(batch)
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        model.train_step(batch)
    sync()
    wall_ms = (time.perf_counter() - t) * 1e3 / iters
    result = {"batch": batch_size, "iters": iters}
    try:  # every GPU activity in the process, cuBLAS included
        import torch
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                model.train_step(batch)
            sync()
        torch.cuda.synchronize()
        rows, totals = summarize_kernels(kernel_events(prof), iters, wall_ms)
        result["profiler"] = {"totals": totals, "kernels": rows, "markdown": markdown(rows, totals)}
        if not rows:  # say so rather than report an idle GPU
            result["profiler"]["note"] = "torch's profiler recorded no GPU activity from CuPy's context"
    except ImportError as e:
        result["profiler"] = {"skipped": f"torch.profiler is not available ({e})"}
    except Exception as e:  # recorded: the events view below needs no profiler
        result["profiler"] = failure(e)
    records = event_timed(model.engine)  # our kernels alone, timed by events
    for _ in range(iters):
        model.train_step(batch)
    sync()
    events = [(name, cupy.cuda.get_elapsed_time(start, end) * 1e3) for name, start, end in records]
    rows, totals = summarize_kernels(events, iters, wall_ms)
    result["events"] = {"totals": totals, "kernels": rows, "markdown": markdown(rows, totals)}
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--results-dir")
    a = ap.parse_args()
    os.environ.pop(TF32_ENV, None)  # fp32 and TF32 are chosen per profile (Model's tf32); no override
    result = {"benchmark": "profile", "environment": environment()}
    reason = cuda_unavailable_reason()
    for name, tf32 in (("cuda", False), ("cuda-tf32", True)):
        if reason:
            result[name] = {"skipped": reason}
            continue
        result[name] = recorded(profile, a.batch, a.iters, tf32)
        for source in ("profiler", "events"):
            view = result[name].get(source, {})
            print(f"{name} {source}:", view.get("markdown", view.get("skipped", view.get("failed"))))
    finish("profile", result, a.results_dir)


if __name__ == "__main__":
    main()
