"""Outputs of generate, evaluate and inspect: checked before any work, never one output over
another, over the checkpoint or over an input; errors in one line, nothing written."""
import hashlib
import os

import numpy as np
import pytest

from biaxial_cu import Model, evaluate, generate, inspect
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
