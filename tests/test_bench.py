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
              "peer": {"eager-10": {"median_ms": 40.0}, "graph-10": {"median_ms": 30.0},
                       "compile-10": {"skipped": "timed out"}}}
    text = headline(result)
    assert "cuda batch 10 12.0 ms, batch 32 30.0 ms" in text
    assert "compile-10 skipped" in text and "fastest peer mode: 2.50x" in text
