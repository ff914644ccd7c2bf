"""Outputs of generate, evaluate and inspect: checked before any work, never one output over
another, over the checkpoint or over an input; errors in one line, nothing written."""
import hashlib
import io
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from biaxial_cu import Model, cli, evaluate, generate, inspect
from biaxial_cu.midi import write_state_matrix


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "ck.npz"
    Model((4,), (3,), dropout=0.0, backend="numpy", seed=0).save(ckpt)
    music = tmp_path / "music"
    music.mkdir()
    S = np.zeros((40, 78, 2), np.uint8)
    S[::4, 30:33] = 1
    S[-1] = 0
    write_state_matrix(S, music / "a.mid")
    return tmp_path, ckpt, music


def run(main, argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(root):
    return {os.path.relpath(os.path.join(d, f), root): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
            for d, _, fs in os.walk(root) for f in fs}


def refused(main, argv, root, capsys, match):
    before = snapshot(root)
    code, _, err = run(main, argv, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert match in err, err
    assert snapshot(root) == before
    return err


G = ["--steps", "3", "--backend", "numpy"]


def test_generate_refuses_outputs_that_would_overwrite_each_other_or_inputs(setup, capsys):
    root, ckpt, music = setup
    refused(generate.main, [ckpt, "--out", root / "x.png", "--silent-seed", *G], root, capsys, "give a .mid name")
    refused(generate.main, [ckpt, "--out", root / "y.WAV", "--wav", "--silent-seed", *G], root, capsys,
            "give a .mid name")
    refused(generate.main, [ckpt, "--out", ckpt, "--silent-seed", *G], root, capsys, "would overwrite")
    refused(generate.main, [ckpt, "--out", music / "a.mid", "--seed-from", music, *G], root, capsys,
            "input folder")
    refused(generate.main, [ckpt, "--out", music, "--silent-seed", *G], root, capsys, "is a folder")
    (root / "c.png").mkdir()
    refused(generate.main, [ckpt, "--out", root / "c.mid", "--silent-seed", *G], root, capsys, "is a folder")
    refused(generate.main, [ckpt, "--out", root / "ck.npz", "--no-png", "--silent-seed", *G], root, capsys,
            "would overwrite")


def test_generate_writes_distinct_names_and_overwrites_its_own_previous_output(setup, capsys):
    root, ckpt, _ = setup
    code, out, err = run(generate.main, [ckpt, "--out", root / "o" / "p.mid", "--count", "2",
                                         "--silent-seed", *G], capsys)
    assert code == 0, err
    assert sorted(os.listdir(root / "o")) == ["p_0.mid", "p_0.png", "p_1.mid", "p_1.png"]
    code, _, err = run(generate.main, [ckpt, "--out", root / "o" / "p_0.mid", "--silent-seed", *G], capsys)
    assert code == 0, err  # an existing output of ours: overwritten, as users expect


def test_evaluate_checks_json_and_png_before_the_work(setup, capsys):
    root, ckpt, music = setup
    E = [ckpt, music, "--train-dir", music, "--backend", "numpy"]
    refused(evaluate.main, [*E, "--png", root / "s.png"], root, capsys, "--generated")
    refused(evaluate.main, [*E, "--generated", music, "--json", root / "r", "--png", root / "r"], root,
            capsys, "the same file")
    refused(evaluate.main, [*E, "--json", ckpt], root, capsys, "would overwrite")
    refused(evaluate.main, [*E, "--json", music / "a.mid"], root, capsys, "input folder")
    refused(evaluate.main, [*E, "--json", music], root, capsys, "is a folder")
    code, _, err = run(evaluate.main, [*E, "--json", root / "r" / "r.json"], capsys)
    assert code == 0, err
    assert (root / "r" / "r.json").is_file()


def test_inspect_checks_unit_and_out_before_the_work(setup, capsys):
    root, ckpt, music = setup
    piece = music / "a.mid"
    err = refused(inspect.main, [ckpt, piece, "--out", root / "i", "--unit", "3"], root, capsys,
                  "--unit 3: layer pitch.0 has 3 units (0..2)")
    assert not (root / "i").exists()
    refused(inspect.main, [ckpt, piece, "--out", ckpt], root, capsys, "not a folder")
    os.replace(ckpt, root / "activations.npz")  # the checkpoint would be overwritten by an output
    refused(inspect.main, [root / "activations.npz", piece, "--out", root], root, capsys, "would overwrite")
    code, _, err = run(inspect.main, [root / "activations.npz", piece, "--out", root / "i", "--unit", "2"],
                       capsys)
    assert code == 0, err
    assert {"activations.npz", "prediction.png"} <= set(os.listdir(root / "i"))


def test_an_output_that_is_a_hard_link_to_an_input_is_refused(setup, capsys):
    """The same file under another name (a hard link) is the same file: refused like the path."""
    root, ckpt, music = setup
    E = [ckpt, music, "--train-dir", music, "--backend", "numpy"]
    os.link(ckpt, root / "hl.json")
    refused(evaluate.main, [*E, "--json", root / "hl.json"], root, capsys, "would overwrite")
    (root / "io").mkdir()
    os.link(ckpt, root / "io" / "activations.npz")
    refused(inspect.main, [ckpt, music / "a.mid", "--out", root / "io"], root, capsys, "would overwrite")
    os.link(ckpt, root / "hl.mid")
    refused(generate.main, [ckpt, "--out", root / "hl.mid", "--silent-seed", *G], root, capsys,
            "would overwrite")
    os.link(ckpt, root / "pic.png")  # the picture beside the MIDI
    refused(generate.main, [ckpt, "--out", root / "pic.mid", "--silent-seed", *G], root, capsys,
            "would overwrite")
    os.link(music / "a.mid", root / "seed.mid")  # a seed piece under another name
    refused(generate.main, [ckpt, "--out", root / "seed.mid", "--seed-from", music, *G], root, capsys,
            "input folder")
    (root / "old.json").write_text("{}")
    os.link(root / "old.json", root / "other.json")  # two outputs, one file
    refused(evaluate.main, [*E, "--generated", music, "--json", root / "other.json", "--png",
                            root / "old.json"], root, capsys, "same file")
    assert Model.load(ckpt, backend="numpy").step == 0  # the checkpoint is whole


def test_json_and_activations_are_written_atomically_breaking_a_hard_link(setup, capsys):
    root, ckpt, music = setup
    (root / "unrelated.txt").write_text("keep me\n")
    os.link(root / "unrelated.txt", root / "r.json")
    code, _, err = run(evaluate.main, [ckpt, music, "--train-dir", music, "--backend", "numpy",
                                       "--json", root / "r.json"], capsys)
    assert code == 0, err
    assert (root / "unrelated.txt").read_text() == "keep me\n"
    assert "loss_per_note_step" in (root / "r.json").read_text()
    (root / "i").mkdir()
    os.link(root / "unrelated.txt", root / "i" / "activations.npz")
    code, _, err = run(inspect.main, [ckpt, music / "a.mid", "--out", root / "i"], capsys)
    assert code == 0, err
    assert (root / "unrelated.txt").read_text() == "keep me\n"
    assert "probabilities" in np.load(root / "i" / "activations.npz").files


def interrupted(main, argv, capsys, match):
    code, _, err = run(main, [str(a) for a in argv], capsys)
    assert code == 130, err
    assert err.count("\n") == 1 and err.startswith("interrupted; ") and "Traceback" not in err, err
    assert match in err, err


def test_ctrl_c_is_one_line_and_exit_130(setup, capsys, monkeypatch):
    root, ckpt, music = setup

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(generate, "compose", ctrl_c)
        interrupted(generate.main, [ckpt, "--silent-seed", *G], capsys, "nothing was finished")
    with monkeypatch.context() as m:
        m.setattr(generate, "piano_roll_png", ctrl_c)  # after the first MIDI file
        interrupted(generate.main, [ckpt, "--out", root / "g.mid", "--count", "2", "--silent-seed", *G],
                    capsys, "wrote 1 of 2 pieces")
    with monkeypatch.context() as m:
        m.setattr(evaluate, "evaluate", ctrl_c)
        interrupted(evaluate.main, [ckpt, music, "--train-dir", music, "--backend", "numpy"], capsys,
                    "nothing was finished")
    with monkeypatch.context() as m:
        m.setattr(inspect, "write_pictures", ctrl_c)  # after activations.npz
        interrupted(inspect.main, [ckpt, music / "a.mid", "--out", root / "i"], capsys, "wrote 1 file")
    with monkeypatch.context() as m:
        m.setattr(inspect.Model, "load", ctrl_c)
        interrupted(inspect.main, [ckpt, music / "a.mid", "--out", root / "j"], capsys,
                    "nothing was finished")


@pytest.mark.parametrize("out", ["", ".", "/", "..", "sub/"])
def test_generate_refuses_an_out_without_a_file_name(setup, capsys, out):
    root, ckpt, _ = setup
    refused(generate.main, [ckpt, "--out", out, "--silent-seed", *G], root, capsys, "names no file")


def test_generate_wav_without_a_synthesizer_is_refused_before_composing(setup, capsys, monkeypatch):
    root, ckpt, _ = setup
    monkeypatch.setattr("shutil.which", lambda name: None)  # no fluidsynth on PATH
    monkeypatch.setattr(generate, "compose", lambda *a, **k: pytest.fail("composed before the check"))
    err = refused(generate.main, [ckpt, "--wav", "--silent-seed", *G], root, capsys, "fluidsynth")
    assert "BIAXIAL_CU_SOUNDFONT" in err and "apt-get install" in err


def test_a_checkpoint_claiming_a_huge_array_is_one_line_in_every_command(setup, capsys):
    root, ckpt, music = setup
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12,)})
    with zipfile.ZipFile(ckpt) as src, zipfile.ZipFile(root / "huge.npz", "w") as z:
        for name in src.namelist():
            z.writestr(name, header.getvalue() + b"\0" * 16 if name == "param/out.W.npy" else src.read(name))
    huge = root / "huge.npz"
    refused(generate.main, [huge, "--silent-seed", *G], root, capsys, "claims shape (1000000000000,)")
    refused(evaluate.main, [huge, music, "--train-dir", music, "--backend", "numpy"], root, capsys,
            "claims shape")
    refused(inspect.main, [huge, music / "a.mid", "--out", root / "i"], root, capsys, "claims shape")


def test_ctrl_c_while_a_command_starts_is_one_line():
    """cli.quiet_start, which every command calls before its imports when run as a program: a
    Ctrl-C then is one line and exit 130, not a traceback from inside a library's import."""
    code = ("import os, signal, time\nfrom biaxial_cu import cli\ncli.quiet_start()\n"
            "os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(10)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == cli.EXIT_INTERRUPTED
    assert r.stderr.splitlines() == ["interrupted while starting; nothing was written"]
