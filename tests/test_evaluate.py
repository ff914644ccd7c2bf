"""Statistics by hand; evaluate and inspect end to end on a tiny model."""
import json
import subprocess
import sys

import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.evaluate import evaluate, loss_of_probabilities, marginal_probabilities, windows
from biaxial_cu.evaluate import main as evaluate_main
from biaxial_cu.midi import read_state_matrix, write_state_matrix
from biaxial_cu.stats import corpus_stats, note_durations, piece_stats
from conftest import needs


def hand_piece():
    """5 steps. Note 0 (MIDI 24, pitch class 0) sounds at steps 0-2, struck at 0 and 2: events of
    2 and 1 steps. Note 14 (MIDI 38, pitch class 2) sounds at steps 1-3 without a strike: one
    event of 3 steps. Step 4 is silent."""
    S = np.zeros((5, 78, 2), np.uint8)
    S[0:3, 0, 0] = 1
    S[[0, 2], 0, 1] = 1
    S[1:4, 14, 0] = 1
    return S


def test_piece_statistics_by_hand():
    st = piece_stats(hand_piece())
    assert st["steps"] == 5
    assert st["notes_per_step"] == pytest.approx(6 / 5)  # 1 + 2 + 2 + 1 + 0 sounding
    assert st["articulations_per_step"] == pytest.approx(2 / 5)
    assert (st["lowest_pitch"], st["highest_pitch"]) == (24, 38)
    assert st["pitch_class_histogram"] == pytest.approx([0.5, 0, 0.5] + [0] * 9)
    assert sorted(note_durations(hand_piece())) == [1, 2, 3]
    assert st["note_events"] == 3 and st["mean_duration"] == pytest.approx(2.0)
    assert st["duration_histogram"][:4] == [1, 1, 1, 0]
    assert st["silent_fraction"] == pytest.approx(1 / 5)


def test_corpus_statistics_pool_pieces():
    silent = np.zeros((3, 78, 2), np.uint8)
    st = corpus_stats({"a": hand_piece(), "b": silent})
    assert st["pieces"] == 2 and st["steps"] == 8
    assert st["notes_per_step"] == pytest.approx(6 / 8)
    assert st["silent_fraction"] == pytest.approx(4 / 8)
    assert piece_stats(silent)["lowest_pitch"] is None


def test_windows_and_baselines_by_hand():
    S = np.zeros((300, 78, 2), np.uint8)
    assert [len(w) for w in windows(S)] == [128, 128, 44]
    assert [len(w) for w in windows(S[:257])] == [128, 128]  # a 1-step tail predicts nothing
    # marginal: note 0 plays in 1 of 4 steps, struck once -> P = (0.25, 1 - 1e-4 clipped)
    T = np.zeros((4, 78, 2), np.uint8)
    T[0, 0] = 1
    m = marginal_probabilities({"x": T})
    assert m[0] == pytest.approx([0.25, 1 - 1e-4]) and m[1] == pytest.approx([1e-4, 0.5])
    # one note-step with P = (0.5, 0.5), target played and struck: -2 log(0.5 + 2^-23)
    assert loss_of_probabilities(np.array([0.5, 0.5]), np.array([1.0, 1.0])) == pytest.approx(
        -2 * np.log(0.5 + 2.0 ** -23))


def test_evaluate_against_baselines():
    model = Model((4,), (3,), dropout=0.0, backend="numpy", seed=0)
    pieces = {"a": hand_piece(), "b": np.tile(hand_piece(), (40, 1, 1))}
    r = evaluate(model, pieces, marginal_probabilities(pieces))
    assert r["note_steps"] == (4 + 127 + 71) * 78
    assert r["model"] > 0 and r["marginal"] > 0 and r["repeat"] > 0
    # the repeat baseline is cheap on a piece that mostly repeats, dear where it changes
    assert r["repeat"] < r["model"]


def run(*args):
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_evaluate_and_inspect_end_to_end(tmp_path):
    model = Model((6,), (4, 3), backend="numpy", seed=1)
    model.save(tmp_path / "m.npz")
    held, gen = tmp_path / "held", tmp_path / "gen"
    held.mkdir()
    gen.mkdir()
    piece = np.tile(hand_piece(), (30, 1, 1))  # 150 steps, last silent: canonical
    write_state_matrix(piece, held / "p.mid")
    write_state_matrix(hand_piece(), gen / "g.mid")
    r = run("biaxial_cu.evaluate", tmp_path / "m.npz", held, "--train-dir", held, "--generated", gen,
            "--json", tmp_path / "e.json", "--png", tmp_path / "s.png", "--backend", "numpy")
    assert r.returncode == 0, r.stderr
    assert "marginal" in r.stdout and "notes_per_step" in r.stdout
    result = json.loads((tmp_path / "e.json").read_text())
    assert set(result["loss_per_note_step"]) == {"model", "marginal", "repeat", "note_steps"}
    assert result["statistics"]["generated"]["steps"] == 5
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"

    r = run("biaxial_cu.inspect", tmp_path / "m.npz", held / "p.mid", "--out", tmp_path / "ins")
    assert r.returncode == 0, r.stderr
    acts = np.load(tmp_path / "ins" / "activations.npz")
    assert acts["time.0"].shape == (149, 78, 6) and acts["pitch.1"].shape == (149, 78, 3)
    np.testing.assert_array_equal(acts["target"], read_state_matrix(held / "p.mid")[1:])
    assert ((acts["probabilities"] > 0) & (acts["probabilities"] < 1)).all()
    for name in ("time_0", "pitch_0", "pitch_1", "prediction"):
        assert (tmp_path / "ins" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def tensorboard_reader_or_skip():
    """TensorBoard's EventAccumulator; skips without the [tensorboard] extra, fails under CI."""
    try:
        import tensorboardX  # noqa: F401  (the writer)
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as e:
        needs(f"the [tensorboard] extra: {e}")
    return EventAccumulator


def test_evaluate_writes_its_tables_and_statistics_to_tensorboard(tmp_path, capsys):
    EventAccumulator = tensorboard_reader_or_skip()
    model = Model((6,), (4,), backend="numpy", seed=1)
    model.train_step(np.tile(hand_piece(), (4, 1, 1))[None, :16])  # the checkpoint is at batch 1
    model.save(tmp_path / "m.npz")
    held, gen = tmp_path / "held", tmp_path / "gen"
    held.mkdir()
    gen.mkdir()
    write_state_matrix(np.tile(hand_piece(), (30, 1, 1)), held / "p.mid")
    write_state_matrix(hand_piece(), gen / "g.mid")
    code = evaluate_main([str(tmp_path / "m.npz"), str(held), "--train-dir", str(held), "--generated", str(gen),
                          "--json", str(tmp_path / "e.json"), "--tensorboard", str(tmp_path / "tb"),
                          "--backend", "numpy"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "e.json").read_text())
    log = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    log.Reload()
    for name in ("model", "marginal", "repeat"):
        [event] = log.Scalars(f"evaluate/loss/{name}")
        assert event.step == 1 and event.value == pytest.approx(result["loss_per_note_step"][name], rel=1e-6)
    [steps] = log.Scalars("evaluate/steps/generated")
    assert steps.value == result["statistics"]["generated"]["steps"] == 5
    assert "evaluate/notes_per_step/held_out" in log.Tags()["scalars"]
    tables = {tag: log.Tensors(tag)[0].tensor_proto.string_val[0].decode() for tag in log.Tags()["tensors"]}
    assert "| marginal |" in tables["evaluate/losses/text_summary"]
    assert "| notes_per_step |" in tables["evaluate/statistics/text_summary"]


def test_evaluate_tensorboard_is_checked_before_the_work(tmp_path, capsys, monkeypatch):
    Model((4,), (3,), backend="numpy", seed=0).save(tmp_path / "m.npz")
    held = tmp_path / "held"
    held.mkdir()
    write_state_matrix(np.tile(hand_piece(), (30, 1, 1)), held / "p.mid")
    base = [str(tmp_path / "m.npz"), str(held), "--train-dir", str(held), "--backend", "numpy"]
    monkeypatch.setattr("biaxial_cu.evaluate.evaluate", lambda *a: pytest.fail("evaluated before the check"))

    def refused(argv, match):
        assert evaluate_main(base + argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and match in err, err

    refused(["--tensorboard", str(tmp_path / "m.npz")], "is not a folder")
    refused(["--tensorboard", ""], "empty path")
    refused(["--json", str(tmp_path / "x"), "--tensorboard", str(tmp_path / "x")], "give another folder")
    monkeypatch.setattr("biaxial_cu.board.available", lambda: False)
    refused(["--tensorboard", str(tmp_path / "tb")], "pip install 'biaxial_cu[tensorboard]'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held", "m.npz"]
