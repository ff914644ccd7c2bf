"""Data-parallel training over MPI (biaxial_cu/distributed.py, train.py): 2 ranks on this machine's
2 cores against one process.

The runs need mpi4py and an MPI launcher (the `[mpi]` extra: mpi4py and MPICH's wheel). Without
them these tests skip with the reason, except under CI (the CI variable set, as .ci/run does, and
.ci/run installs the extra), where that fails: they must run somewhere.

Bounds: in float64 the 2-rank parameters equal one process's to 1e-10 relative (measured 6e-16:
only the order of additions differs). In float32, after 6 batches of the CLI's small model, each
tensor's largest difference is at most 1e-4 of its largest value (measured 1.3e-5; the order of
float32 gradient sums differs, and Adadelta's first steps, -sqrt(eps / Eg) * g, pass relative
differences of small gradients straight into the update), and the logged train losses agree to
1e-6 relative (measured 1e-8).
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from biaxial_cu import distributed
from biaxial_cu.checkpoint import read_checkpoint
from biaxial_cu.distributed import DistributedError, share
from conftest import needs

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
TINY = ["--t-layers", "16,16", "--p-layers", "8,8", "--batch-size", "4", "--seq-len", "16", "--log-every", "2",
        "--sample-every", "3", "--early-until", "0", "--sample-steps", "0", "--validation-batches", "3",
        "--validation-fraction", "0.25", "--no-progress"]
FLOAT32_PARAMETERS = 1e-4  # largest |difference| / largest |value|, per tensor (see the docstring)
FLOAT32_LOSSES = 1e-6


def mpirun_path():
    """The launcher beside this Python (the [mpi] extra's), else on PATH; None without one."""
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.exists() else shutil.which("mpirun")


def missing_mpi():
    try:
        from mpi4py import MPI  # noqa: F401 - loads the MPI library too
    except Exception as e:  # noqa: BLE001 - ImportError, or RuntimeError when no libmpi is found
        return f"mpi4py cannot be imported ({type(e).__name__}: {e}); pip install -e '.[mpi]'"
    if mpirun_path() is None:
        return "no mpirun found; pip install -e '.[mpi]' (MPICH's wheel brings it)"
    return None


@pytest.fixture(scope="module")
def mpirun():
    needs(missing_mpi())  # CI installs the [mpi] extra
    return mpirun_path()


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIAXIAL_CU_")}
    env.update(OMP_NUM_THREADS="1", **{k: str(v) for k, v in extra.items()})
    return env


def launch(mpirun, ranks, *args, timeout=120, **env):
    """`mpirun -n ranks python ...` (ranks 0: no launcher) -> CompletedProcess."""
    command = [sys.executable, *map(str, args)]
    if ranks:
        command = [mpirun, "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment(**env))


def train(mpirun, ranks, music, out, *args, **env):
    return launch(mpirun, ranks, "-m", "biaxial_cu.train", music, "--out", out, *TINY, *args, **env)


def parameters(path):
    arrays, _ = read_checkpoint(path)
    return {k: v for k, v in arrays.items() if k.startswith("param/")}


def assert_parameters_close(a, b, bound):
    assert a.keys() == b.keys()
    for k in a:
        worst = float(np.abs(a[k] - b[k]).max() / np.abs(a[k]).max())
        assert worst <= bound, f"{k}: {worst:.2e} > {bound:.0e}"


def log_rows(out):
    import json

    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]


def assert_logs_close(a, b):
    rows_a, rows_b = log_rows(a), log_rows(b)
    assert [r["batch"] for r in rows_a] == [r["batch"] for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        for key in ("train_loss", "val_loss"):
            assert ra[key] == pytest.approx(rb[key], rel=FLOAT32_LOSSES), (key, ra, rb)


@pytest.fixture(scope="module")
def one_process(mpirun, music, tmp_path_factory):
    """The 1-process run of 6 batches every 2-rank run is compared with."""
    out = tmp_path_factory.mktemp("one") / "run"
    r = train(mpirun, 0, music, out, "--batches", 6)
    assert r.returncode == 0, r.stderr
    return out


# ----------------------------------------------------------------------------- without a launcher


def test_share_gives_every_row_to_one_rank():
    for batch_size in range(1, 12):
        for size in range(1, batch_size + 1):
            rows = [share(batch_size, rank, size) for rank in range(size)]
            assert rows[0][0] == 0 and rows[-1][1] == batch_size
            assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
            assert max(b - a for a, b in rows) - min(b - a for a, b in rows) <= 1
            assert min(b - a for a, b in rows) >= 1
    with pytest.raises(ValueError, match="cannot be shared by 3 ranks"):
        share(2, 0, 3)


def test_without_a_launcher_nothing_changes(monkeypatch):
    for name in distributed.LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    assert isinstance(distributed.world(), distributed.Solo)
    monkeypatch.setenv("PMI_RANK", "0")
    assert distributed.launched_by_mpi()


@pytest.mark.parametrize("text", ["0", "-3", "nan", "inf", "soon"])
def test_a_bad_timeout_is_refused(monkeypatch, text):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, text)
    with pytest.raises(DistributedError, match=distributed.TIMEOUT_ENV):
        distributed.timeout_from_env()


# ----------------------------------------------------------------------------- 2 ranks


@pytest.mark.parametrize("dtype, bound", [("float64", 1e-10), ("float32", 1e-5)])
def test_two_ranks_take_the_steps_one_process_takes(mpirun, tmp_path, dtype, bound):
    """Model.train_step(ranks=...) on 2 ranks (rows 2 + 3 of a 5-row batch, with dropout) equals
    one process on the same global batches."""
    for ranks, name in ((2, "two.npz"), (0, "one.npz")):
        r = launch(mpirun, ranks, HERE / "mpi_steps.py", tmp_path / name, dtype, 5)
        assert r.returncode == 0, r.stderr
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert_parameters_close(dict(one), dict(two), bound)


def test_a_two_rank_run_equals_the_one_process_run(mpirun, music, one_process, tmp_path):
    out = tmp_path / "run"
    r = train(mpirun, 2, music, out, "--batches", 6)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^2 ranks \(.*\): rank 0 pid \d+ on .*, rank 1 pid \d+ on ", r.stdout, re.M), r.stdout
    assert r.stdout.count("done: 6 batches") == 1  # rank 0 speaks for both
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in one_process.iterdir())
    assert_logs_close(one_process, out)
    assert_parameters_close(parameters(one_process / "latest.npz"), parameters(out / "latest.npz"),
                            FLOAT32_PARAMETERS)


def test_resume_moves_between_two_ranks_and_one(mpirun, music, one_process, tmp_path):
    """2 ranks to batch 3, 1 process to 5, 2 ranks to 6: the run one process makes straight."""
    out = tmp_path / "run"
    r = train(mpirun, 2, music, out, "--batches", 3)
    assert r.returncode == 0, r.stderr
    for ranks, batches in ((0, 5), (2, 6)):
        r = launch(mpirun, ranks, "-m", "biaxial_cu.train", "--resume", out, "--batches", batches, "--no-progress")
        assert r.returncode == 0, r.stderr
        assert f"resuming {out} after batch" in r.stdout
    assert [row["batch"] for row in log_rows(out)] == [2, 3, 4, 5, 6]  # a row at each run's last batch
    assert_parameters_close(parameters(one_process / "latest.npz"), parameters(out / "latest.npz"),
                            FLOAT32_PARAMETERS)


def test_a_batch_smaller_than_the_ranks_is_one_error(mpirun, music, tmp_path):
    r = train(mpirun, 2, music, tmp_path / "run", "--batch-size", 1)
    assert r.returncode == 2
    assert r.stderr.count("error: a batch of 1 rows cannot be shared by 2 ranks") == 1, r.stderr
    assert not (tmp_path / "run").exists()


def test_an_error_is_said_once_and_nothing_is_written(mpirun, music, tmp_path):
    """Every rank finds the error; rank 0 alone says it, and every rank stops before writing."""
    r = train(mpirun, 2, tmp_path / "nowhere", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("error: no such folder") == 1, r.stderr
    assert not (tmp_path / "run").exists()


def test_a_nan_on_one_rank_stops_every_rank(mpirun, music, tmp_path):
    out = tmp_path / "run"
    r = train(mpirun, 2, music, out, "--batches", 6, BIAXIAL_CU_FAULT_RANK=1, BIAXIAL_CU_INJECT_NAN_AT=4)
    assert r.returncode == 3, r.stderr
    assert r.stderr.count("stopped: NaN or Inf") == 1 and f"{out / 'latest.npz'}" in r.stderr, r.stderr
    assert read_checkpoint(out / "latest.npz")[1]["step"] == 3


def test_ctrl_c_on_one_rank_stops_every_rank_at_one_batch(mpirun, music, one_process, tmp_path):
    out = tmp_path / "run"
    r = train(mpirun, 2, music, out, "--batches", 6, BIAXIAL_CU_FAULT_RANK=1, BIAXIAL_CU_INTERRUPT_AT=4)
    assert r.returncode == 130, r.stderr
    assert r.stderr.count("interrupted after batch 4") == 1, r.stderr
    r = launch(mpirun, 2, "-m", "biaxial_cu.train", "--resume", out)
    assert r.returncode == 0, r.stderr
    assert_logs_close(one_process, out)


def test_a_killed_rank_ends_the_run_and_is_named(mpirun, music, tmp_path):
    """Rank 1 killed outright (SIGKILL) during batch 5: the launcher stops rank 0 at once and names
    the dead process's id, which the run's first line maps to rank 1; the checkpoint of batch 3
    stays good."""
    out = tmp_path / "run"
    started = time.monotonic()
    r = train(mpirun, 2, music, out, "--batches", 6, BIAXIAL_CU_FAULT_RANK=1, BIAXIAL_CU_KILL_AT=5, timeout=60)
    assert r.returncode != 0 and time.monotonic() - started < 60
    pids = dict(re.findall(r"rank (\d+) pid (\d+)", r.stdout))
    dead = re.search(r"PID (\d+) RUNNING AT", r.stdout + r.stderr)
    assert dead and {v: k for k, v in pids.items()}[dead.group(1)] == "1", (r.stdout, r.stderr)
    assert read_checkpoint(out / "latest.npz")[1]["step"] == 3


def test_a_rank_that_hangs_is_named_after_the_timeout(mpirun, music, tmp_path):
    """Rank 1 stops answering (SIGSTOP) during batch 5: after BIAXIAL_CU_MPI_TIMEOUT seconds rank 0
    names it, with the last good checkpoint, and every rank ends."""
    out = tmp_path / "run"
    started = time.monotonic()
    r = train(mpirun, 2, music, out, "--batches", 6, BIAXIAL_CU_FAULT_RANK=1, BIAXIAL_CU_STOP_AT=5,
              BIAXIAL_CU_MPI_TIMEOUT=3, timeout=60)
    assert r.returncode == distributed.EXIT_RANK_LOST, (r.returncode, r.stderr)
    assert time.monotonic() - started < 60
    assert re.search(r"stopped: rank 0: rank 1 did not reach .* within 3 s", r.stderr), r.stderr
    assert f"the last good checkpoint is {out / 'latest.npz'}" in r.stderr


@pytest.mark.gpu
def test_the_nccl_all_reduce_equals_the_mpi_path(mpirun, tmp_path):
    """One rank on the lent GPU: the gradient sum through NCCL (device buffer, in place) and
    through MPI (host buffer) give the same training steps."""
    r = launch(mpirun, 1, HERE / "mpi_steps.py", tmp_path / "nccl.npz", "float32", 3, "cuda")
    assert r.returncode == 0, r.stderr
    r = launch(mpirun, 1, HERE / "mpi_steps.py", tmp_path / "mpi.npz", "float32", 3, "cuda-host")
    assert r.returncode == 0, r.stderr
    nccl, mpi = np.load(tmp_path / "nccl.npz"), np.load(tmp_path / "mpi.npz")
    for k in nccl.files:
        np.testing.assert_array_equal(nccl[k], mpi[k], err_msg=k)


def test_the_scale_benchmark_measures_each_rank_count(mpirun, tmp_path):
    """bench/scale.py --quick: 1 rank with every core and with 1 thread, then 2 ranks, each timed."""
    import json

    r = subprocess.run([sys.executable, HERE.parent / "bench" / "scale.py", "--quick", "--iters", "1",
                        "--results-dir", tmp_path], capture_output=True, text=True, timeout=300,
                       env=environment())
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("scale-*.json")
    runs = json.loads(path.read_text())["runs"]
    assert [run["ranks"] for run in runs][-1] == 2 and all("failed" not in run for run in runs), runs
    assert all(run["seconds_per_batch"] > 0 and run["note_steps_per_s"] > 0 for run in runs)


def test_two_ranks_in_mode_all_equal_one_process(mpirun, tmp_path):
    """--meters all: each rank takes its rows' bar positions with its rows of the batch."""
    from biaxial_cu.midi import write_state_matrix
    from midi_helpers import random_canonical_roll

    music = tmp_path / "music"
    music.mkdir()
    rng = np.random.default_rng(5)
    for k, meter in enumerate(("3/4", "6/8", "9/8", None)):
        write_state_matrix(random_canonical_roll(rng, 64), music / f"p{k}.mid", meter=meter)
    runs = []
    for ranks in (0, 2):
        out = tmp_path / f"run{ranks}"
        r = train(mpirun, ranks, music, out, "--batches", 4, "--meters", "all", "--seq-len", "24")
        assert r.returncode == 0, r.stderr
        runs.append(out)
    assert_logs_close(*runs)
    assert_parameters_close(parameters(runs[0] / "latest.npz"), parameters(runs[1] / "latest.npz"), FLOAT32_PARAMETERS)


BREAK_RANK_1 = """
import os, sys
from biaxial_cu import train
real = train.validation_loss

def broken(*args, **kwargs):  # a bug on rank 1 alone, mid-run
    if os.environ.get("PMI_RANK") == "1":
        raise {error}
    return real(*args, **kwargs)

train.validation_loss = broken
sys.exit(train.main(sys.argv[1:], leaving=True))
"""


@pytest.mark.parametrize("error", ["ValueError('boom')", "MemoryError()"])
def test_an_unexpected_error_on_one_rank_stops_every_rank_at_once(mpirun, music, tmp_path, error):
    """Any exception on one rank mid-run (not only the errors a user can fix) ends every rank
    at once, naming the rank and the error (an empty message by its type), instead of leaving
    the others to wait out the collective timeout."""
    script = tmp_path / "broken.py"
    script.write_text(BREAK_RANK_1.format(error=error))
    started = time.monotonic()
    r = launch(mpirun, 2, script, music, "--out", tmp_path / "run", *TINY, "--batches", 6, timeout=120)
    assert r.returncode != 0 and time.monotonic() - started < 60
    assert f"rank 1: error: {error.split('(')[0]}" in r.stderr, r.stderr
    assert "did not reach" not in r.stderr and "no answer" not in r.stderr
