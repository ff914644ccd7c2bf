"""Tile shapes of kernels/lstm.cu, measured: each variant compiled with -D options, checked
against the float64 reference, then timed per launch at the model's step shapes.

    python bench/lstm_tiles.py            # on a GPU machine; writes results/lstm_tiles-*.json

The variants are backends/cuda/kernels.py's LSTM_*_TILES: the first of each list is the default
(lstm.cu's #defines); the fp32 kernels and their TF32 tensor-core variants are swept alike.
Times are CUDA-event times of 200 back-to-back launches of one step (t = 1, so the recurrent
product runs), divided by 200: the GPU's time per step whenever a launch takes longer than
Python needs to issue it (a few microseconds).
"""
import argparse
import functools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ResultFile, environment, finish, recorded  # noqa: E402

from biaxial_cu.backends import reference as ref  # noqa: E402
from biaxial_cu.backends.cuda.kernels import (LSTM_BACKWARD_TF32_TILES, LSTM_BACKWARD_TILES,  # noqa: E402
                                              LSTM_FORWARD_TF32_TILES, LSTM_FORWARD_TILES, cuda_unavailable_reason,
                                              kernel_source, lstm_backward_launch, lstm_forward_launch,
                                              module_options)

SHAPES = {"time 10x128": (780, 300), "pitch.0 10x128": (1270, 100), "pitch.1 10x128": (1270, 50),
          "time 64x128": (4992, 300)}


def compiled(name, variant):
    import cupy

    defines = [f"{k}={v}" for k, v in variant.items()]
    return cupy.RawKernel(kernel_source("lstm"), name, options=module_options("lstm", defines))


def us_per_launch(launch, n=200):
    import cupy

    launch()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(n):
        launch()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) * 1e3 / n


@functools.lru_cache(maxsize=None)
def forward_inputs(R, H):
    """Host inputs of a forward step and the float64 twin's h: drawn once per shape."""
    rng = np.random.default_rng(R * H)
    xproj = rng.standard_normal((2, R, 4 * H)).astype(np.float32)
    h0, c0 = rng.standard_normal((R, H)).astype(np.float32), rng.standard_normal((R, H)).astype(np.float32)
    W_h = (rng.standard_normal((4 * H, H)) / np.sqrt(H)).astype(np.float32)
    want_h, _, _ = ref.lstm_step_forward(xproj[1].astype(np.float64), h0.astype(np.float64), c0.astype(np.float64),
                                         W_h.astype(np.float64), "identity")
    return xproj, h0, c0, W_h, want_h


def forward_case(kernel, variant, R, H, tf32=False):
    """Step 1 of a 2-step layer: its error against the float64 twin (on the unrounded operands,
    so a TF32 kernel's error is TF32's) and its time."""
    import cupy

    xproj, h0, c0, W_h, want_h = forward_inputs(R, H)
    gates, h, c = cupy.asarray(xproj), cupy.asarray(np.stack([h0, h0])), cupy.asarray(np.stack([c0, c0]))
    W, unused = cupy.asarray(W_h), cupy.zeros(1, cupy.float32)
    grid, block = lstm_forward_launch(R, H, variant, tf32)
    args = (gates, h, c, W, unused, unused, np.int32(R), np.int32(H), np.int32(0), np.int32(0), np.int32(1))
    kernel(grid, block, args)
    error = float(np.abs(h[1].get() - want_h).max())
    # timed as it stands: each launch now reads the previous launch's gates as its xproj, which
    # changes values (they stay finite) but not the work
    return error, us_per_launch(lambda: kernel(grid, block, args))


@functools.lru_cache(maxsize=None)
def backward_inputs(R, H):
    """Host inputs of a backward step 0 (step 1's dpre in slice 1) and the float64 twin's dpre."""
    rng = np.random.default_rng(R + H)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    gates_np = rng.random((2, R, 4 * H)).astype(np.float32)
    dpre1, c_np, dh_np, dc_np = f32(R, 4 * H), f32(2, R, H), f32(2, R, H), f32(R, H)
    gates_np[1] = dpre1
    W_h = (f32(4 * H, H) / np.sqrt(4 * H)).astype(np.float32)
    want, _ = ref.lstm_step_backward(dh_np[0].astype(np.float64), dpre1.astype(np.float64), dc_np.astype(np.float64),
                                     gates_np[0].astype(np.float64), c_np[0].astype(np.float64), np.zeros((R, H)),
                                     W_h.astype(np.float64), "identity")
    return gates_np, c_np, dh_np, dc_np, W_h, want


def backward_case(kernel, variant, R, H, tf32=False):
    """Step 0 of a 2-step layer (so the recurrent product from step 1 runs): error and time."""
    import cupy

    gates_np, c_np, dh_np, dc_np, W_h, want = backward_inputs(R, H)
    gates, W, c, dh = (cupy.asarray(a) for a in (gates_np, W_h, c_np, dh_np))
    dc_next, dc_prev, unused = cupy.asarray(dc_np), cupy.empty((R, H), cupy.float32), cupy.zeros(1, cupy.float32)
    grid, block = lstm_backward_launch(R, H, variant, tf32)
    head = (dh, gates, W, c, unused, np.int32(R), np.int32(H), np.int32(0), np.int32(0), np.int32(2))
    kernel(grid, block, head + (dc_next, dc_prev, np.int32(0)))
    error = float(np.abs(gates[0].get() - want).max())
    return error, us_per_launch(lambda: kernel(grid, block, head + (dc_next, dc_prev, np.int32(0))))


def compile_all(jobs):
    """{(name, variant as a tuple): compiled RawKernel or the exception}: NVRTC runs one core a
    compile (and releases the GIL), so the ~20 variants compile in threads, not one by one."""
    import concurrent.futures

    import cupy

    def build(job):
        name, variant = job
        with cupy.cuda.Device(0):
            kernel = compiled(name, dict(variant))
            kernel.compile()
            return kernel

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = {job: pool.submit(build, job) for job in jobs}
    return {job: f.exception() or f.result() for job, f in futures.items()}


def variant_row(name, variant, case, kernel):
    if isinstance(kernel, Exception):
        raise kernel
    row = {"variant": variant, "registers": kernel.attributes["num_regs"],
           "local_bytes": kernel.attributes["local_size_bytes"], "shapes": {}}
    for label, (R, H) in SHAPES.items():
        error, us = case(kernel, variant, R, H, name.endswith("_tf32"))
        row["shapes"][label] = {"R": R, "H": H, "max_abs_error": error, "us_per_launch": us,
                                "tflops_per_s": 2 * R * 4 * H * H / (us * 1e-6) / 1e12}
    print(name, variant, {k: round(v["us_per_launch"], 2) for k, v in row["shapes"].items()})
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results-dir")
    a = ap.parse_args()
    result = {"benchmark": "lstm_tiles", "environment": environment()}
    file = ResultFile("lstm_tiles", result, a.results_dir)
    reason = cuda_unavailable_reason()
    if reason:
        result["cuda"] = {"skipped": reason}
    else:
        result["cuda"] = {}
        sweeps = (("forward", LSTM_FORWARD_TILES, forward_case), ("backward", LSTM_BACKWARD_TILES, backward_case),
                  ("forward_tf32", LSTM_FORWARD_TF32_TILES, forward_case),
                  ("backward_tf32", LSTM_BACKWARD_TF32_TILES, backward_case))
        kernels = compile_all([(f"lstm_step_{d}", tuple(v.items())) for d, variants, _ in sweeps for v in variants])
        for direction, variants, case in sweeps:  # saved after every variant: a time limit keeps the rest
            name, rows = f"lstm_step_{direction}", result["cuda"].setdefault(direction, [])
            for v in variants:
                row = recorded(variant_row, name, v, case, kernels[name, tuple(v.items())])
                rows.append({"variant": v, **row} if "failed" in row else row)
                file.save()
    finish("lstm_tiles", result, file=file)


if __name__ == "__main__":
    main()
