"""Shared by the benchmarks: environment facts, timing, FLOP counts, result files."""
import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import time
import traceback
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
    # the device machine gets a copy of the tree without .git: gpu_session.sh passes the commit
    commit = os.environ.get("BIAXIAL_CU_COMMIT") or _run(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    env = {"commit": commit, "cpu": platform.processor() or platform.machine(),
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


def peer_unavailable_reason(path):
    """None when the PyTorch peer can run on a GPU here, else why not."""
    if not path:
        return "no --peer given"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "torch sees no GPU"


def load_peer(path):
    """The peer's module: run unchanged, in this process (the benchmarks' one-process rule)."""
    spec = importlib.util.spec_from_file_location("torch_biaxial", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peer_result(peer, task, **args):
    """peer.bench_<task> with the arguments its command line takes, plus what its CLI adds to
    the JSON; {"failed": why} if it fails."""
    import torch

    result = recorded(getattr(peer, f"bench_{task}"), argparse.Namespace(**args))
    if "failed" not in result:
        result.update(peer.device_info(), torch=torch.__version__, peer="pytorch-cudnn")
    return result


def recorded(fn, *args):
    """fn(*args), or {"failed": why} with the traceback printed: a part that fails is recorded,
    not raised, so that it costs no other part its numbers (a GPU session is short)."""
    try:
        return fn(*args)
    except Exception as e:
        traceback.print_exc()
        return failure(e)


def failure(e):
    """How a result records a part that raised e."""
    return {"failed": f"{type(e).__name__}: {e}"[:1000]}


def skip_reason(part, parts, unavailable_reason):
    """Why `part` is not run: not in --parts, else unavailable_reason() (None: it runs)."""
    return "not asked for (--parts)" if part not in parts else unavailable_reason()


class ResultFile:
    """One result JSON, rewritten after every part (save()), so that a run stopped midway still
    leaves what it measured."""

    def __init__(self, name, result, results_dir=None):
        results_dir = Path(results_dir or RESULTS)
        results_dir.mkdir(parents=True, exist_ok=True)
        device = str(result.get("environment", {}).get("device", "cpu")).replace(" ", "_")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.path = results_dir / f"{name}-{device}-{stamp}.json"
        self.result = result

    def save(self):
        """Atomically (a temporary file, then a rename): a run killed mid-write leaves the last one."""
        tmp = self.path.with_suffix(".json.part")
        tmp.write_text(json.dumps(self.result, indent=1))
        os.replace(tmp, self.path)


def unmeasured(result, path=()):
    """(where, "skipped"/"failed", why) for every part of a result that was not measured."""
    for key, value in result.items():
        if isinstance(value, dict):
            for kind in ("skipped", "failed"):
                if kind in value:
                    yield "/".join(map(str, path + (key,))), kind, value[kind]
            yield from unmeasured(value, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from unmeasured({f"{key}[{i}]": item}, path)


def finish(name, result, results_dir=None, file=None):
    """Say plainly which parts were skipped or failed, then write the result file."""
    for where, kind, why in unmeasured(result):
        print(f"{where}: {kind} ({why})")
    file = file or ResultFile(name, result, results_dir)
    file.save()
    print(f"wrote {file.path}")
    return file.path
