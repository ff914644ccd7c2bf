"""The benchmark scripts run (CPU parts, --quick) and write result files with what they promise."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,args", [("train.py", ["--quick"]), ("generate.py", ["--quick"]),
                                         ("midi.py", ["--iters", "1"]), ("profile_batch.py", ["--iters", "1"]),
                                         ("lstm_tiles.py", [])])
def test_bench_script_writes_a_result(tmp_path, script, args):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--results-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    env = result["environment"]
    assert env["commit"] and env["numpy"] and "device" in env
    if script == "profile_batch.py":
        assert "skipped" in result["cuda"] or result["cuda"]["events"]["kernels"]
    elif script == "lstm_tiles.py":
        assert "skipped" in result["cuda"] or result["cuda"]["backward"]
    elif script != "midi.py":
        assert result["numpy"]
        assert "skipped" in result["cuda"] or result["cuda"]  # skipped with a reason, or measured
        assert "skipped" in result["peer"]


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
                     "memcheck", "racecheck", "peer-compile", "midi"]
    for line in steps:  # the CPU machine has no compute-sanitizer: those two may fail to start
        name = line.split(":")[0]
        log = work / "logs" / f"{name}.log"
        assert " exit 0 " in line or name in ("memcheck", "racecheck"), (line, log.exists() and log.read_text()[-3000:])
    with tarfile.open(out / "session.tgz") as tar:
        members = tar.getnames()
    results = [Path(m).name.split("-")[0] for m in members if m.startswith("./results/")]
    assert sorted(set(results)) == ["generate", "lstm_tiles", "midi", "profile", "train"]
    assert results.count("train") == 3 and "./logs/pytest-gpu.log" in members and "./summary.md" in members
