"""The benchmark scripts run (CPU parts, --quick) and write result files with what they promise."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,args", [("train.py", ["--quick"]), ("generate.py", ["--quick"]),
                                         ("midi.py", ["--iters", "1"])])
def test_bench_script_writes_a_result(tmp_path, script, args):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--results-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    env = result["environment"]
    assert env["commit"] and env["numpy"] and "device" in env
    if script != "midi.py":
        assert result["numpy"]
        assert "skipped" in result["cuda"] or result["cuda"]  # skipped with a reason, or measured
        assert "skipped" in result["peer"]
