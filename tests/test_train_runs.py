"""`train` never loses a user's work: flags checked before any work, a run folder holds
one run (run.json), --resume continues it exactly (parameters and log rows), Ctrl-C ends cleanly.

Most cases call train.main in this process (tiny layers, a few batches); the ones that need a
real command line run it as a subprocess and are marked slow.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from biaxial_cu import Model, train

TINY = ["--t-layers", "8", "--p-layers", "4", "--batch-size", "2", "--seq-len", "16", "--sample-steps", "0",
        "--backend", "numpy", "--no-progress", "--no-tensorboard"]


def main(*args, **kwargs):
    return train.main([str(a) for a in args], **kwargs)


def rows(out, seconds=False):
    """The log's rows (without the wall-clock seconds, which no two runs share)."""
    found = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return found if seconds else [{k: v for k, v in r.items() if k != "seconds"} for r in found]


def assert_same_parameters(a, b):
    ma, mb = Model.load(a / "latest.npz", backend="numpy"), Model.load(b / "latest.npz", backend="numpy")
    assert ma.step == mb.step
    for name in ma.params:
        np.testing.assert_array_equal(ma.params[name], mb.params[name], err_msg=name)
    assert ma.rng.bit_generator.state == mb.rng.bit_generator.state


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("flags,says", [
    (["--batch-size", "0"], "--batch-size: must be >= 1"),
    (["--seq-len", "1"], "--seq-len: must be >= 2"),
    (["--batches", "0"], "--batches: must be in [1, 1000000000]"),
    (["--batches", "1000000001"], "--batches: must be in [1, 1000000000]"),
    (["--batches", "ten"], "expected an integer"),
    (["--dropout", "1"], "--dropout: must be in [0, 1)"),
    (["--dropout", "nan"], "--dropout: must be in [0, 1)"),
    (["--dropout", "-0.1"], "--dropout"),
    (["--validation-fraction", "1"], "--validation-fraction: must be in [0, 1)"),
    (["--seed", "-1"], "--seed: must be >= 0"),
    (["--log-every", "0"], "--log-every: must be in [1, 1000000000]"),
    (["--validation-batches", "-1"], "--validation-batches: must be in [0, 10000]"),
    (["--validation-batches", "1000000000"], "--validation-batches: must be in [0, 10000]"),
    (["--sample-every", "-1"], "--sample-every: must be in [0, 1000000000]"),
    (["--sample-every", "10000000000"], "--sample-every: must be in [0, 1000000000]"),
    (["--early-sample-every", "-1"], "--early-sample-every"),
    (["--early-until", "-1"], "--early-until"),
    (["--sample-steps", "-1"], "--sample-steps: must be in [0, 100000]"),
    (["--sample-steps", "100000000000"], "--sample-steps: must be in [0, 100000]"),
    (["--out", ""], "--out: an empty path"),
    (["--t-layers", "8,0"], "layer sizes must be positive"),
    (["--p-layers", "x"], "expected sizes like"),
    (["--tf32", "--backend", "numpy"], "--tf32 is a mode of the cuda backend"),
    (["--force", "--resume", "somewhere"], "give one of them"),
])
def test_a_bad_flag_is_one_line_before_any_work(music, tmp_path, capsys, monkeypatch, flags, says):
    monkeypatch.chdir(tmp_path)  # --out "" must not fall back to runs/biaxial
    with pytest.raises(SystemExit) as e:
        main(music, *([] if "--out" in flags else ["--out", tmp_path / "run"]), "--batches", 2, *flags)
    assert e.value.code == 2
    assert says in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists() and not os.path.exists("runs")


@pytest.mark.parametrize("case", ["huge", "out_is_a_file", "unwritable", "resume_nothing"])
def test_a_bad_model_or_output_is_one_line_before_loading(music, tmp_path, capsys, case):
    out = tmp_path / "run"
    flags = {"huge": ["--t-layers", "100000,100000"], "out_is_a_file": [], "unwritable": [],
             "resume_nothing": ["--resume", tmp_path / "nothing"]}[case]
    if case == "out_is_a_file":
        out.write_text("mine")
    if case == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root can write anywhere")
        tmp_path.chmod(0o500)
    try:
        code = main(music, *([] if case == "resume_nothing" else ["--out", out]), "--batches", 2, *TINY, *flags)
    finally:
        tmp_path.chmod(0o700)
    assert code == 2
    captured = capsys.readouterr()
    stdout, line = captured.out, one_error_line(captured.err)
    assert {"huge": "would need about", "out_is_a_file": "is not a folder", "unwritable": "cannot write",
            "resume_nothing": "no such run folder or checkpoint"}[case] in line
    assert "loading" not in stdout
    assert case == "out_is_a_file" or not out.exists()


def test_no_usable_pieces_lists_a_summary(tmp_path, capsys):
    folder = tmp_path / "music"
    folder.mkdir()
    for k in range(7):
        (folder / f"bad{k}.mid").write_bytes(b"not midi")
    with pytest.warns(Warning):
        assert main(folder, "--out", tmp_path / "run", *TINY) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no usable pieces" in line and "bad0.mid" in line and "and 4 more" in line and "bad6" not in line
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- a folder holds one run


def test_a_folder_with_another_run_is_refused_and_force_moves_it_aside(music, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(music, "--out", out, "--batches", 2, "--log-every", 1, *TINY) == 0
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["t_layers"] == [8] and settings["seq_len"] == 16 and settings["batches"] == 2
    assert settings["music_dir"] == str(music) and settings["backend"] == "numpy" and settings["tf32"] is False
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    assert main(music, "--out", out, "--batches", 3, *TINY) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "holds another run" in line and f"--resume={out}" in line and "--force" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_force_starts_a_new_run_and_moves_the_old_one_aside(music, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(music, "--out", out, "--batches", 2, *TINY) == 0
    (out / "notes.txt").write_text("mine")  # not a run's file: stays
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "notes.txt"}
    assert main(music, "--out", out, "--batches", 3, "--log-every", 3, "--seed", 5, "--force", *TINY) == 0
    assert f"moved the earlier run's files to {out / 'previous-1'}" in capsys.readouterr().out
    assert [r["batch"] for r in rows(out)] == [3]  # the new run's log alone
    assert json.loads((out / "run.json").read_text())["settings"]["seed"] == 5
    assert {p.name: p.read_bytes() for p in (out / "previous-1").iterdir()} == before
    assert (out / "notes.txt").read_text() == "mine"


def test_a_flag_that_contradicts_the_run_is_refused(music, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(music, "--out", out, "--batches", 2, *TINY) == 0
    capsys.readouterr()
    for flags, says in [(["--seq-len", 32], "--seq-len 32 contradicts this run's 16"),
                        (["--dropout", 0.25], "--dropout 0.25 contradicts this run's 0.5"),
                        ([tmp_path], f"MUSIC_DIR {tmp_path} contradicts this run's {music}"),
                        (["--out", tmp_path / "elsewhere"], "is not the folder of --resume")]:
        assert main("--resume", out, *flags) == 2
        assert says in one_error_line(capsys.readouterr().err)
    assert [r["batch"] for r in rows(out)] == [2]
    # the recorded settings themselves (and --batches, to train further) are fine
    assert main("--resume", out / "latest.npz", "--seq-len", 16, "--batches", 3, "--no-progress") == 0
    assert [r["batch"] for r in rows(out)] == [2, 3]


@pytest.mark.parametrize("case", ["out_is_music", "out_in_music", "music_in_out", "resumed_into_its_music"])
def test_a_run_folder_that_shares_the_music_folder_is_refused(music, tmp_path, capsys, case):
    """Samples written into the music would be read back as training data."""
    m = tmp_path / "m"
    shutil.copytree(music, m)
    (tmp_path / "link").symlink_to(m)  # real paths are compared
    out = {"out_is_music": tmp_path / "link", "out_in_music": m / "run", "music_in_out": tmp_path,
           "resumed_into_its_music": tmp_path / "run"}[case]
    if case == "resumed_into_its_music":  # a run whose recorded music is its own folder
        assert main(music, "--out", out, "--batches", 1, *TINY) == 0
        recorded = json.loads((out / "run.json").read_text())
        recorded["settings"]["music_dir"] = str(out)
        (out / "run.json").write_text(json.dumps(recorded))
        capsys.readouterr()
    before = tree(tmp_path)
    code = main("--resume", out) if case == "resumed_into_its_music" else main(m, "--out", out, *TINY)
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "MUSIC_DIR" in line and "read as music to train on" in line
    assert tree(tmp_path) == before


def tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def finished(music, tmp_path_factory):
    """A run of 3 batches: a log row each, checkpoints at 2 and 3."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(music, "--out", out, "--batches", 3, "--log-every", 1, "--early-sample-every", 2,
                "--early-until", 4, *TINY) == 0
    return out


@pytest.fixture
def run(finished, tmp_path, capsys):
    """A copy of the finished run to change."""
    shutil.copytree(finished, tmp_path / "run")
    capsys.readouterr()
    return tmp_path / "run"


def test_damaged_log_rows_are_left_out_with_one_warning(run, capsys):
    good = (run / "log.jsonl").read_text()
    bad = ['{"batch": "x"}', '{"batch": null}', '{"batch": 2, "val_loss": null, "seconds": 1}',
           '{"batch": 0, "train_loss": 1, "seconds": 1}', '{"batch": true, "train_loss": 1, "seconds": 1}',
           '{"batch": 1, "train_loss": NaN, "seconds": 1}', '{"batch": 1, "train_loss": "1", "seconds": 1}',
           '{"batch": 1, "train_loss": 1, "val_loss": "x", "seconds": 1}', '{"batch": 1, "train_loss": 1}',
           '[1, 2]', '"row"']
    (run / "log.jsonl").write_text(good + "\n".join(bad) + "\n")
    assert main("--resume", run, "--batches", 4, "--no-progress") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        f"warning: {run / 'log.jsonl'}: left out {len(bad)} line(s) that are not log rows"]
    assert [r["batch"] for r in rows(run)] == [1, 2, 3, 4] and (run / "log.jsonl").read_text().startswith(good)


def test_a_run_without_run_json_takes_the_checkpoints_model_and_says_which_are_defaults(music, run, capsys):
    recorded = json.loads((run / "run.json").read_text())["settings"]
    (run / "run.json").unlink()  # a run folder from a version before run.json
    assert main("--resume", run, music, "--batches", 4, "--seq-len", 16, "--batch-size", 2, "--log-every", 1,
                "--early-sample-every", 2, "--early-until", 4, "--sample-steps", 0, "--backend", "numpy",
                "--no-progress") == 0
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {run} holds no run.json"), warnings
    said = warnings[0].split("took the defaults ")[1]
    assert "--seed 0" in said and "--validation-fraction 0.1" in said and "--validation-batches 4" in said
    assert "--seq-len" not in said and "--t-layers" not in said and "--dropout" not in said  # given / the model's
    now = json.loads((run / "run.json").read_text())["settings"]
    assert now == {**recorded, "batches": 4}  # this run's own settings were the defaults
    assert [r["batch"] for r in rows(run)] == [1, 2, 3, 4]


@pytest.mark.parametrize("key,value", [("seq_len", "abc"), ("seq_len", 1), ("seq_len", 16.5), ("t_layers", "x"),
                                       ("t_layers", [0]), ("t_layers", [True]), ("dropout", 1.5),
                                       ("tf32", "yes"), ("backend", "gpu"), ("validation_batches", 10 ** 9),
                                       ("batch_size", True), ("batch_size", None), ("music_dir", 3), ("batches", [4])])
def test_a_damaged_run_json_is_refused_naming_the_setting(run, capsys, key, value):
    data = json.loads((run / "run.json").read_text())
    data["settings"][key] = value
    (run / "run.json").write_text(json.dumps(data))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main("--resume", run, "--batches", 4, "--no-progress") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{run / 'run.json'} is damaged: its {key} is" in line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_checkpoint_with_nan_parameters_is_refused(run, capsys):
    model = Model.load(run / "latest.npz", backend="numpy")
    next(iter(model.params.values()))[...] = np.nan
    model.save(run / "latest.npz")
    assert main("--resume", run, "--batches", 4, "--no-progress") == 2
    assert f"{run / 'latest.npz'} holds NaN or Inf parameters" in one_error_line(capsys.readouterr().err)
    assert [r["batch"] for r in rows(run)] == [1, 2, 3]


def test_batches_below_the_checkpoints_step_is_refused(run, capsys):
    before = (run / "run.json").read_text()
    assert main("--resume", run, "--batches", 2) == 2
    assert "is at batch 3, past --batches 2" in one_error_line(capsys.readouterr().err)
    assert (run / "run.json").read_text() == before and [r["batch"] for r in rows(run)] == [1, 2, 3]
    assert main("--resume", run / "checkpoint_000002.npz", "--batches", 2) == 0  # that one is at 2: done
    assert "done: 2 batches; checkpoint " + str(run / "checkpoint_000002.npz") in capsys.readouterr().out


def test_without_latest_npz_the_newest_checkpoint_is_resumed(run, capsys):
    (run / "latest.npz").unlink()
    (run / "checkpoint_000003.npz").unlink()
    assert main("--resume", run, "--batches", 4, "--no-progress") == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [(
        f"warning: {run / 'latest.npz'} is missing; resuming from {run / 'checkpoint_000002.npz'}, the newest "
        f"checkpoint in {run}")]
    assert "resuming" in captured.out and "after batch 2" in captured.out
    assert [r["batch"] for r in rows(run)] == [1, 2, 3, 4]
    assert Model.load(run / "latest.npz", backend="numpy").step == 4


def test_the_resume_hint_works_for_a_folder_named_like_a_flag(music, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIAXIAL_CU_INTERRUPT_AT", "1")
    assert main(music, "--out=-run", "--batches", 2, *TINY) == 130
    monkeypatch.delenv("BIAXIAL_CU_INTERRUPT_AT")
    hint = capsys.readouterr().err.strip().splitlines()[-1].split("resume with: ")[1]
    assert hint.endswith(" --resume=-run")
    assert main(*shlex.split(hint)[3:]) == 0
    assert Model.load(tmp_path / "-run" / "latest.npz", backend="numpy").step == 2


@pytest.mark.parametrize("case", ["done", "interrupted", "nan"])
def test_ctrl_c_after_the_last_message_is_ignored(music, tmp_path, capsys, monkeypatch, case):
    """A Ctrl-C in the moment after the last message (as the process leaves) does nothing."""
    said = []

    def final_then_ctrl_c(message, file=None):
        final(message, file)
        said.append(message)
        os.kill(os.getpid(), signal.SIGINT)

    final = train.final
    monkeypatch.setattr(train, "final", final_then_ctrl_c)
    monkeypatch.setenv({"done": "X", "interrupted": "BIAXIAL_CU_INTERRUPT_AT",
                        "nan": "BIAXIAL_CU_INJECT_NAN_AT"}[case], "1")
    handler = signal.getsignal(signal.SIGINT)
    assert main(music, "--out", tmp_path / "run", "--batches", 2, *TINY) == {"done": 0, "interrupted": 130,
                                                                            "nan": 3}[case]
    assert signal.getsignal(signal.SIGINT) is handler  # in-process: the caller's handler is back
    err = capsys.readouterr().err
    assert len(said) == 1 and "Traceback" not in err and "before training started" not in err
    monkeypatch.undo()
    try:
        assert main(music, "--out", tmp_path / "other", "--batches", 1, *TINY, leaving=True) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the command line: ignored to the end
    finally:
        signal.signal(signal.SIGINT, handler)


def test_the_log_follows_the_umask(music, tmp_path):
    previous = os.umask(0o002)
    try:
        assert main(music, "--out", tmp_path / "run", "--batches", 1, *TINY) == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "run" / "log.jsonl").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "run" / "run.json").stat().st_mode & 0o777 == 0o664


# ----------------------------------------------------------------------------- resuming exactly


COMMON = ["--batches", 7, "--log-every", 3, "--early-sample-every", 2, "--early-until", 4,
          "--sample-every", 5, "--validation-fraction", 0.25, *TINY]


@pytest.fixture(scope="module")
def uninterrupted(music, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    assert main(music, "--out", out, *COMMON) == 0
    return out


def interrupted(music, out, at, capsys, monkeypatch):
    monkeypatch.setenv("BIAXIAL_CU_INTERRUPT_AT", str(at))
    assert main(music, "--out", out, *COMMON) == 130
    monkeypatch.delenv("BIAXIAL_CU_INTERRUPT_AT")
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"interrupted after batch {at}: checkpoint {out / 'latest.npz'}; resume with: ")
    return line.split("resume with: ")[1]


@pytest.mark.slow
def test_the_resume_hint_followed_literally_equals_an_uninterrupted_run(music, uninterrupted, tmp_path, capsys,
                                                                        monkeypatch):
    out = tmp_path / "run"
    hint = interrupted(music, out, 5, capsys, monkeypatch)  # 5: after a log row at 3, before the next at 6
    command = shlex.split(hint)
    assert command[:3] == ["python", "-m", "biaxial_cu.train"]
    r = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "done: 7 batches" in r.stdout and "warning" not in r.stderr
    assert_same_parameters(uninterrupted, out)
    assert rows(out) == rows(uninterrupted)  # the train loss at 6 averages batches 4, 5 and 6
    assert [r["seconds"] for r in rows(out, seconds=True)] == sorted(r["seconds"] for r in rows(out, seconds=True))


def test_a_torn_last_line_is_cut_with_one_warning(music, uninterrupted, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    interrupted(music, out, 4, capsys, monkeypatch)
    with open(out / "log.jsonl", "a") as log:
        log.write('{"batch": 6, "train_lo')  # a run killed while writing its row
    assert main("--resume", out / "latest.npz") == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "torn last line" in warnings[0]
    assert_same_parameters(uninterrupted, out)
    assert rows(out) == rows(uninterrupted)


def test_rows_after_the_checkpoint_are_cut_after_a_nan(music, uninterrupted, tmp_path, capsys, monkeypatch):
    """NaN at batch 5: rows 3 was written, the last checkpoint is at 4 -> resume from it."""
    out = tmp_path / "run"
    monkeypatch.setenv("BIAXIAL_CU_INJECT_NAN_AT", "5")
    assert main(music, "--out", out, *COMMON[:3], 1, *COMMON[4:]) == 3  # a row every batch
    monkeypatch.delenv("BIAXIAL_CU_INJECT_NAN_AT")
    err = capsys.readouterr().err
    assert "last good checkpoint is" in err and "Traceback" not in err
    assert [r["batch"] for r in rows(out)] == [1, 2, 3, 4]
    hint = err.split("resume from it with ")[1].split()
    assert hint[:3] == ["python", "-m", "biaxial_cu.train"] and hint[3] == f"--resume={out / 'latest.npz'}"
    (out / "log.jsonl").write_text((out / "log.jsonl").read_text() + '{"batch": 5, "train_loss": 1, "seconds": 9}\n')
    assert main(*hint[3:], "--log-every", 1) == 0  # the recorded log-every; a stray later row is cut
    assert "cut 1 row(s) after batch 4" in capsys.readouterr().out
    assert [r["batch"] for r in rows(out)] == [1, 2, 3, 4, 5, 6, 7]
    assert_same_parameters(uninterrupted, out)


def test_ctrl_c_during_the_last_batch_says_done(music, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BIAXIAL_CU_INTERRUPT_AT", "3")
    assert main(music, "--out", tmp_path / "run", "--batches", 3, *TINY) == 0
    captured = capsys.readouterr()
    assert "done: 3 batches" in captured.out and "interrupted" not in captured.err
    assert Model.load(tmp_path / "run" / "latest.npz", backend="numpy").step == 3


def test_a_run_interrupted_before_its_first_checkpoint_resumes_from_the_start(music, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"

    def stop(*_a, **_k):
        raise KeyboardInterrupt

    assert main(music, "--out", out, "--batches", 2, *TINY) == 0
    for checkpoint in out.glob("*.npz"):  # as if stopped before any checkpoint: only run.json and a log
        checkpoint.unlink()
    monkeypatch.setattr(train, "load_music", stop)
    assert main("--resume", out) == 130
    monkeypatch.undo()
    assert capsys.readouterr().err.strip().splitlines() == [
        "interrupted before training started; no checkpoint was written"]
    assert main("--resume", out) == 0
    assert "resuming " + str(out) + " from the start: it holds no checkpoint" in capsys.readouterr().out
    assert Model.load(out / "latest.npz", backend="numpy").step == 2 and [r["batch"] for r in rows(out)] == [2]


# ----------------------------------------------------------------------------- Ctrl-C while starting


def test_ctrl_c_while_loading_is_one_line(music, tmp_path, capsys, monkeypatch):
    def stop(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "load_music", stop)
    assert main(music, "--out", tmp_path / "run", *TINY) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "interrupted before training started; no checkpoint was written"]
    assert not (tmp_path / "run").exists()


SLOW_LOAD = """
import sys, time
from biaxial_cu import train

def slow_load(*args, **kwargs):  # a folder that takes long to read
    time.sleep(60)

train.load_pieces_report = slow_load  # the name train.load_music calls
sys.exit(train.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_ctrl_c_while_reading_a_folder_gives_no_traceback(music, tmp_path):
    """A real SIGINT to a real process once it says it is loading (a stand-in loader that
    sleeps keeps it there for sure)."""
    p = subprocess.Popen([sys.executable, "-c", SLOW_LOAD, str(music), "--out", str(tmp_path / "run"),
                          *map(str, TINY)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("loading ")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130 and err.strip().splitlines() == [
        "interrupted before training started; no checkpoint was written"], err
    assert not (tmp_path / "run").exists()


def test_the_corpus_cache_flags(music, tmp_path, capsys):
    """--cache-dir keeps the corpus cache there and a second run trains on the same pieces from
    it; --no-cache writes none; a cache folder inside MUSIC_DIR or a file is one error line."""
    cache = tmp_path / "cache"
    for n, extra in enumerate((["--cache-dir", cache, "--workers", 2], ["--cache-dir", cache])):
        assert main(music, "--out", tmp_path / f"run{n}", "--batches", 2, "--log-every", 1, *extra, *TINY) == 0
    assert {".json", ".npy"} <= {p.suffix for p in cache.iterdir()}
    assert rows(tmp_path / "run0") == rows(tmp_path / "run1")
    assert main(music, "--out", tmp_path / "run2", "--batches", 1, "--no-cache", *TINY) == 0
    capsys.readouterr()
    assert main(music, "--out", tmp_path / "run3", "--batches", 1, "--cache-dir", music / "c", *TINY) == 2
    assert "inside" in one_error_line(capsys.readouterr().err)
    with pytest.raises(SystemExit, match="2"):  # a flag's error: argparse's exit
        main(music, "--out", tmp_path / "run3", "--batches", 1, "--cache-dir", music / "piece0.mid", *TINY)
    assert "give a folder" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run3").exists()
