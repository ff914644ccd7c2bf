"""Shared by the benchmarks: environment facts, timing, FLOP counts, result files."""
import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PEAKS_TFLOPS = {"H100": {"fp32": 67.0, "tf32": 494.7}, "H200": {"fp32": 67.0, "tf32": 494.7}}  # SXM, dense


def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def environment():
    """Device, driver, library versions and the commit: what a result needs to be read later."""
    env = {"commit": _run(["git", "-C", str(ROOT), "rev-parse", "HEAD"]), "cpu": platform.processor() or platform.machine(),
           "python": platform.python_version(), "numpy": np.__version__,
           "utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if shutil.which("nvidia-smi"):
        env["nvidia_smi"] = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    for module in ("numba", "cupy", "torch"):
        try:
            env[module] = __import__(module).__version__
        except Exception:
            env[module] = None
    try:
        import cupy

        env["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        env["device"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:
        env["device"] = "cpu"
    return env


def time_calls(fn, iters, warmup=2, sync=None):
    """Median and spread of fn() in ms after warm-up; sync() waits for the device if given."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)),
            "max_ms": float(np.max(times)), "times_ms": times}


def train_flops(batch, seq_len, t_sizes=(300, 300), p_sizes=(100, 50)):
    """FLOPs of one training batch: 2 per multiply-add of every GEMM (input projections,
    recurrent products, output layer) in the forward pass, times 3 for forward + backward
    (the backward pass does two GEMMs of the same size per forward GEMM). Elementwise work
    is left out."""
    steps = seq_len - 1
    macs = 0
    for I, H in zip((80,) + tuple(t_sizes[:-1]), t_sizes):  # time stack: B*78 rows x steps
        macs += batch * 78 * steps * 4 * H * (I + H)
    for I, H in zip((t_sizes[-1] + 2,) + tuple(p_sizes[:-1]), p_sizes):  # pitch: B*steps rows x 78
        macs += batch * steps * 78 * 4 * H * (I + H)
    macs += batch * steps * 78 * 2 * p_sizes[-1]
    return 3 * 2 * macs


def peak_fractions(tflops_per_s, device):
    """Achieved TFLOP/s as fractions of the device's dense fp32 and TF32 peaks (None if unknown)."""
    peaks = next((v for k, v in PEAKS_TFLOPS.items() if k in str(device)), None)
    if not peaks:
        return {}
    return {f"fraction_of_{kind}_peak": tflops_per_s / peak for kind, peak in peaks.items()}


def run_peer(args, timeout=420):
    """The peer's one JSON line, or {"skipped": why} (a failure or a time-out is recorded, not raised)."""
    try:
        p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"peer timed out after {timeout} s: {' '.join(map(str, args[1:]))}"}
    if p.returncode:
        return {"skipped": f"peer failed (exit {p.returncode}): {p.stderr[-800:]}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def finish(name, result, results_dir=None):
    """Say plainly which GPU parts were skipped, then write the result file."""
    for part in ("cuda", "peer"):
        if "skipped" in result.get(part, {}):
            print(f"{part}: skipped ({result[part]['skipped']})")
    return write_result(name, result, results_dir or RESULTS)


def write_result(name, result, results_dir=RESULTS):
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    device = str(result.get("environment", {}).get("device", "cpu")).replace(" ", "_")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"{name}-{device}-{stamp}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return path
