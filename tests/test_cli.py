"""The command lines end to end, as subprocesses, on tiny settings (issue: trainer and generator)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.midi import read_state_matrix
from biaxial_cu.viz import piano_roll_size

TINY = ["--t-layers", "8,8", "--p-layers", "6,4", "--batch-size", "2", "--seq-len", "16",
        "--sample-steps", "12", "--no-progress"]


def run(module, *args, **kw):
    env = {**os.environ, **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300, **kw)


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.slow
def test_train_then_generate_end_to_end(music, tmp_path):
    out = tmp_path / "run"
    r = run("biaxial_cu.train", music, "--out", out, "--batches", 4, "--log-every", 2,
            "--early-sample-every", 2, "--validation-fraction", 0.25, *TINY)
    assert r.returncode == 0, r.stderr
    assert "loaded 4 pieces" in r.stdout and "3 for training, 1 held out" in r.stdout
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["batch"] for row in rows] == [2, 4]
    assert set(rows[0]) == {"batch", "train_loss", "val_loss", "seconds"}
    assert all(row["val_loss"] > 0 and row["train_loss"] > 0 for row in rows)
    model = Model.load(out / "latest.npz", backend="numpy")
    assert model.step == 4 and model.config["t_layer_sizes"] == [8, 8]
    assert read_state_matrix(out / "sample_000004.mid").shape[1:] == (78, 2)
    assert png_size(out / "sample_000004.png") == piano_roll_size(13)
    assert png_size(out / "curve.png") == (600, 400)

    g = run("biaxial_cu.generate", out / "latest.npz", "--out", tmp_path / "gen" / "p.mid",
            "--steps", 20, "--count", 2, "--seed-from", music, "--backend", "numpy")
    assert g.returncode == 0, g.stderr
    for k in range(2):
        S = read_state_matrix(tmp_path / "gen" / f"p_{k}.mid")
        assert S.shape[0] in (21, 22)  # a sounding last step is released one step later
        assert png_size(tmp_path / "gen" / f"p_{k}.png") == piano_roll_size(21)


@pytest.mark.slow
def test_resume_gives_the_same_parameters(music, tmp_path):
    common = [music, "--batches", 6, "--log-every", 3, "--early-sample-every", 3, *TINY]
    assert run("biaxial_cu.train", *common, "--out", tmp_path / "a").returncode == 0
    first = run("biaxial_cu.train", *common[:1], "--batches", 3, *common[3:], "--out", tmp_path / "b")
    assert first.returncode == 0, first.stderr
    resumed = run("biaxial_cu.train", *common, "--out", tmp_path / "b", "--resume", tmp_path / "b" / "latest.npz")
    assert resumed.returncode == 0, resumed.stderr
    a = Model.load(tmp_path / "a" / "latest.npz", backend="numpy")
    b = Model.load(tmp_path / "b" / "latest.npz", backend="numpy")
    assert a.step == b.step == 6
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(music, tmp_path):
    """SIGINT once training is under way: a log row (--log-every 1) shows a batch done, so the
    Ctrl-C handler, set before the first batch, is in place. Waits for that with a deadline."""
    out = tmp_path / "run"
    log = out / "log.jsonl"
    with open(tmp_path / "stdout.txt", "w") as stdout, open(tmp_path / "stderr.txt", "w") as stderr:
        p = subprocess.Popen([sys.executable, "-m", "biaxial_cu.train", str(music), "--out", str(out),
                              "--batches", "100000", "--log-every", "1", "--sample-every", "100000",
                              "--early-sample-every", "100000", *TINY], stdout=stdout, stderr=stderr, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (log.is_file() and log.read_text().count("\n") >= 1):
                assert p.poll() is None, f"train exited ({p.returncode}) before a batch was logged"
                assert time.monotonic() < deadline, "no batch logged within 60 s"
                time.sleep(0.05)
            logged = json.loads(log.read_text().splitlines()[0])["batch"]
            p.send_signal(signal.SIGINT)
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    err = (tmp_path / "stderr.txt").read_text()
    assert p.returncode == 130, err
    assert "interrupted after batch" in err and "--resume" in err
    model = Model.load(out / "latest.npz", backend="numpy")
    assert model.step >= logged >= 1
    assert f"interrupted after batch {model.step}: checkpoint {out / 'latest.npz'}" in err


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(music, tmp_path):
    out = tmp_path / "run"
    r = run("biaxial_cu.train", music, "--out", out, "--batches", 10, "--early-sample-every", 2,
            *TINY, env={"BIAXIAL_CU_INJECT_NAN_AT": "5"})
    assert r.returncode == 3
    assert "NaN or Inf" in r.stderr and "batch 5" in r.stderr and "latest.npz" in r.stderr
    model = Model.load(out / "latest.npz", backend="numpy")
    assert model.step == 4
    assert all(np.isfinite(p).all() for p in model.params.values())


@pytest.mark.parametrize("case", ["missing", "empty", "only_bad"])
def test_clear_errors_for_bad_folders(tmp_path, case):
    folder = tmp_path / "music"
    if case != "missing":
        folder.mkdir()
    if case == "only_bad":
        (folder / "a.mid").write_bytes(b"not midi")
        (folder / "b.mid").write_bytes(b"")
    r = run("biaxial_cu.train", folder, "--out", tmp_path / "out", *TINY)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert {"missing": "no such folder", "empty": "no MIDI files", "only_bad": "a.mid"}[case] in r.stderr


def test_resume_with_another_configuration_is_refused(music, tmp_path):
    out = tmp_path / "run"
    assert run("biaxial_cu.train", music, "--out", out, "--batches", 1, *TINY).returncode == 0
    r = run("biaxial_cu.train", music, "--out", out, "--batches", 2, "--resume", out / "latest.npz",
            "--t-layers", "9,9", *TINY[2:])
    assert r.returncode == 2 and "--t-layers 9,9 contradicts this run's 8,8" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_generate_with_a_bad_checkpoint(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"junk")
    r = run("biaxial_cu.generate", tmp_path / "bad.npz", "--out", tmp_path / "p.mid")
    assert r.returncode == 2 and "bad.npz" in r.stderr and "Traceback" not in r.stderr
