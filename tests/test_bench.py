"""The benchmark scripts run (CPU parts, --quick) and write result files with what they promise."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def measured(part):
    """A timing record of common.time_calls: a positive median between the fastest and slowest call."""
    return part["median_ms"] > 0 and part["min_ms"] <= part["median_ms"] <= part["max_ms"]


@pytest.mark.slow
@pytest.mark.parametrize("script,args", [("train.py", ["--quick"]), ("generate.py", ["--quick"]),
                                         ("midi.py", ["--iters", "1"]), ("profile_batch.py", ["--iters", "1"]),
                                         ("lstm_tiles.py", [])])
def test_bench_script_writes_a_result(tmp_path, script, args):
    """Each part is either measured or skipped with the reason this machine gives: where the cuda
    backend cannot run (CPU machines, CI) every cuda part is {"skipped": that reason}; without
    --peer the peer part is {"skipped": "no --peer given"}; the NumPy parts are always measured."""
    from biaxial_cu.backends.cuda import cuda_unavailable_reason

    cuda_reason = cuda_unavailable_reason()  # decided here, before reading the result
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--results-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    env = result["environment"]
    assert env["commit"] and env["numpy"] and "device" in env
    if importlib.util.find_spec("cupy") is None:
        assert env["device"] == "cpu" and env["cupy"] is None
    cuda_parts = {"train.py": ["cuda", "cuda-tf32-gemms", "cuda-tf32"], "generate.py": ["cuda"],
                  "profile_batch.py": ["cuda", "cuda-tf32"], "lstm_tiles.py": ["cuda"], "midi.py": []}[script]
    for name in cuda_parts:
        if cuda_reason:
            assert result[name] == {"skipped": cuda_reason}, name
            assert f"{name}: skipped ({cuda_reason})" in r.stdout  # finish() says so plainly
        elif script == "profile_batch.py":
            assert "failed" not in result[name] and result[name]["events"]["kernels"], name
        elif script == "lstm_tiles.py":
            for direction in ("forward", "backward", "forward_tf32", "backward_tf32"):
                rows = result[name][direction]
                assert rows and not [row for row in rows if "failed" in row], (direction, rows)
        else:  # one record per batch size (train.py) or piece count (generate.py)
            parts = result[name]
            assert parts and not list(failures(parts)), (name, parts)
            assert all(measured(part) if script == "train.py" else part["total_s"] > 0 for part in parts.values())
    if script in ("train.py", "generate.py"):
        assert result["peer"] == {"skipped": "no --peer given"}
        assert "peer: skipped (no --peer given)" in r.stdout
    if script == "train.py":
        numpy = result["numpy"]  # --quick: 2 batches of 16 steps, 2 timed calls
        assert measured(numpy) and len(numpy["times_ms"]) == 2, numpy
        assert numpy["batch"] == 2 and numpy["seq_len"] == 16 and numpy["flops"] > 0 and numpy["tflops_per_s"] > 0
    elif script == "generate.py":
        numpy = result["numpy"]  # --quick: 1 and 2 pieces, 64 steps (JSON keys are strings)
        assert sorted(numpy) == ["1", "2"], numpy
        for k, part in numpy.items():
            assert part["pieces"] == int(k) and part["steps"] == 64 and part["total_s"] > 0, part
            assert part["ms_per_step"] == pytest.approx(part["total_s"] * 1e3 / 64)
    elif script == "midi.py":
        assert measured(result) and len(result["times_ms"]) == 1  # --iters 1
        assert result["folder"] == "corpus_midi" and result["files"] >= result["pieces"] >= 30
        assert result["steps"] >= 128 * result["pieces"]
    assert not list(failures(result)), list(failures(result))  # every part measured or skipped


def failures(result, where=""):
    """(where, why) of every part of a result recorded as failed."""
    if isinstance(result, dict):
        if "failed" in result:
            yield where, result["failed"]
        for key, value in result.items():
            yield from failures(value, f"{where}/{key}")
    elif isinstance(result, list):
        for i, item in enumerate(result):
            yield from failures(item, f"{where}[{i}]")


def test_profile_summary_adds_up():
    sys.path.insert(0, str(ROOT / "bench"))
    from profile_batch import markdown, summarize_kernels

    events = [("lstm_step_forward", 20.0)] * 6 + [("sgemm", 5.0)] * 2 + [("lstm_step_backward", 10.0)] * 4
    rows, totals = summarize_kernels(events, batches=2, wall_ms_per_batch=0.1)
    assert [r["kernel"] for r in rows] == ["lstm_step_forward", "lstm_step_backward", "sgemm"]
    assert rows[0]["launches_per_batch"] == 3 and rows[0]["gpu_ms_per_batch"] == 0.06
    assert rows[0]["us_per_launch"] == 20.0
    assert sum(r["share"] for r in rows) == 1.0
    assert totals["gpu_busy_ms_per_batch"] == (120 + 10 + 40) / 2 / 1e3
    assert totals["launches_per_batch"] == 6 and totals["gpu_busy_fraction"] == 0.85
    assert "| `lstm_step_forward` | 3 | 0.060 | 20.0 | 70.6% |" in markdown(rows, totals)


def test_readme_results_table_is_current():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "summarize.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, "bench/README.md is out of date: run python bench/summarize.py"


def test_headline_of_a_gpu_train_result():
    """What a GPU result will look like once written by train.py (keys as JSON gives them back)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from summarize import headline

    result = {"benchmark": "train", "numpy": {"batch": 10, "median_ms": 9000.0},
              "cuda": {"10": {"median_ms": 12.0}, "32": {"median_ms": 30.0}},
              "cuda-tf32-gemms": {"10": {"failed": "RuntimeError: no"}, "32": {"median_ms": 20.0}},
              "peer": {"eager-10": {"median_ms": 40.0}, "graph-10": {"median_ms": 30.0},
                       "compile-10": {"failed": "timed out"}, "graph-32": {"median_ms": 90.0}}}
    text = headline(result)
    assert "cuda batch 10 12.0 ms, batch 32 30.0 ms" in text
    assert "cuda-tf32-gemms batch 10 failed, batch 32 20.0 ms" in text and "compile-10 failed" in text
    assert "cuda over the fastest peer mode: batch 10 2.50x, batch 32 3.00x" in text
    assert "cuda-tf32-gemms over the fastest peer mode: batch 32 4.50x" in text
    assert headline({"benchmark": "train", "cuda": {"skipped": "no GPU"}, "peer": {"skipped": "no"}}) == ""


@pytest.mark.slow
def test_gpu_session_script_packs_every_step(tmp_path):
    """bench/gpu_session.sh is what a rare, short GPU lease runs in one call: on the CPU (quick
    models, GPU parts skipped) every step must run and session.tgz must bring back the logs and
    one result file per benchmark."""
    import os
    import tarfile

    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OUT": str(out), "BIAXIAL_CU_SESSION_DIR": str(work), "BIAXIAL_CU_SESSION_QUICK": "1",
           "BIAXIAL_CU_COMMIT": "0" * 40, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(ROOT / "bench" / "gpu_session.sh"), "300"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = (out / "steps.txt").read_text().splitlines()
    names = [line.split(":")[0] for line in steps]
    assert names == ["train-10", "pytest-gpu", "pytest-gpu-tf32", "generate", "profile", "train-32-64", "lstm-tiles",
                     "scale", "nccl", "memcheck", "racecheck", "peer-compile", "midi"]
    for line in steps:  # the CPU machine has no compute-sanitizer: those two may fail to start
        name = line.split(":")[0]
        log = work / "logs" / f"{name}.log"
        assert " exit 0 " in line or name in ("memcheck", "racecheck"), (line, log.exists() and log.read_text()[-3000:])
    with tarfile.open(out / "session.tgz") as tar:
        members = tar.getnames()
    results = [Path(m).name.split("-")[0] for m in members if m.startswith("./results/")]
    assert sorted(set(results)) == ["generate", "lstm_tiles", "midi", "profile", "scale", "train"]
    assert results.count("train") == 3 and "./logs/pytest-gpu.log" in members and "./summary.md" in members
