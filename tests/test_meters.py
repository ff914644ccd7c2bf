"""Every meter through loading, batches, training and evaluation (meters "all"); the original's
behaviour stays exactly as it was by default, and for 4/4 music the two modes are the same.
(The reader's rules: tests/test_meters_midi.py; features, kernels and gradients in both modes:
test_features.py, test_kernels_features.py, test_reference.py, test_cuda_glue_emu.py.)"""
import json
import os

import numpy as np
import pytest

from biaxial_cu import evaluate, train
from biaxial_cu.checkpoint import read_checkpoint
from biaxial_cu.data import load_pieces_report, sample_batch
from biaxial_cu.midi import bar_positions, write_state_matrix
from midi_helpers import random_canonical_roll

pytestmark = pytest.mark.filterwarnings("ignore::biaxial_cu.midi.MidiWarning")  # original mode ending pieces
TINY = ["--t-layers", "8", "--p-layers", "4", "--batch-size", "3", "--seq-len", "24", "--sample-steps", "4",
        "--backend", "numpy", "--no-progress", "--no-tensorboard", "--batches", "3", "--log-every", "1",
        "--validation-fraction", "0.25", "--validation-batches", "2"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Pieces of 60 steps in 4/4 (no signature), 3/4 and 6/8, and one that moves from 4/4 to 3/4
    at step 40."""
    folder = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(3)
    for name, meter in (("a_plain", None), ("b_waltz", "3/4"), ("c_jig", "6/8"), ("d_change", [(0, "4/4"), (40, "3/4")]),
                        ("e_plain", None)):
        write_state_matrix(random_canonical_roll(rng, 60), folder / f"{name}.mid", meter=meter)
        os.utime(folder / f"{name}.mid", ns=(10**18, 10**18))  # not "just changed": the cache trusts them
    return folder


def test_original_mode_ends_a_waltz_and_all_reads_it(mixed):
    original = load_pieces_report(mixed, min_steps=24, cache=False)
    every = load_pieces_report(mixed, min_steps=24, cache=False, meters="all")
    assert original.bars is None and "b_waltz.mid" in original.too_short
    assert sorted(every.pieces) == ["a_plain.mid", "b_waltz.mid", "c_jig.mid", "d_change.mid", "e_plain.mid"]
    assert every.bars["b_waltz.mid"] == ((0, 12),) and every.bars["a_plain.mid"] == ((0, 16),)
    t = np.arange(60)
    np.testing.assert_array_equal(bar_positions(every.bars["d_change.mid"], 60), np.where(t < 40, t % 16, (t - 40) % 12))
    for key in ("a_plain.mid", "e_plain.mid"):
        np.testing.assert_array_equal(every.pieces[key], original.pieces[key])


def test_segments_start_on_bar_lines(mixed):
    report = load_pieces_report(mixed, min_steps=24, cache=False, meters="all")
    batch, positions = sample_batch(report.pieces, 64, 24, 0, bars=report.bars)
    assert batch.shape == (64, 24, 78, 2) and positions.shape == (64, 24) and positions.dtype == np.int32
    assert (positions[:, 0] == 0).all()  # every segment starts on a bar line
    assert ((positions[:, 1:] == positions[:, :-1] + 1) | (positions[:, 1:] == 0)).all()
    assert {12, 16} <= {int(row.max()) + 1 for row in positions}  # 3/4 (and 6/8) bars and 4/4 ones


def test_for_4_4_music_the_two_modes_draw_the_same_batches(music):
    original = load_pieces_report(music, min_steps=16, cache=False)
    every = load_pieces_report(music, min_steps=16, cache=False, meters="all")
    for seed in range(5):
        batch = sample_batch(original.pieces, 4, 16, seed)
        same, positions = sample_batch(every.pieces, 4, 16, seed, bars=every.bars)
        np.testing.assert_array_equal(batch, same)
        np.testing.assert_array_equal(positions, np.tile(np.arange(16), (4, 1)))


def test_the_cache_keeps_bar_lines_per_mode(mixed, tmp_path):
    for _ in range(2):  # the second load of each mode comes from its own cache
        for meters in ("original", "all"):
            cached = load_pieces_report(mixed, min_steps=24, cache_dir=tmp_path, meters=meters)
            fresh = load_pieces_report(mixed, min_steps=24, cache=False, meters=meters)
            assert cached.bars == fresh.bars and cached.pieces.keys() == fresh.pieces.keys()
    assert cached.files_read == 0
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_training_in_mode_all_on_4_4_music_is_the_original(music, tmp_path):
    runs = {}
    for meters in ("original", "all"):
        out = tmp_path / meters
        assert train.main([str(music), "--out", str(out), "--meters", meters, *TINY[:-6], "--seq-len", "16",
                           "--batches", "3", "--log-every", "1"]) == 0
        runs[meters] = out
    rows = [[{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for line in (runs[m] / "log.jsonl").read_text().splitlines()] for m in runs]
    assert rows[0] == rows[1]
    arrays = [read_checkpoint(runs[m] / "latest.npz") for m in runs]
    for name, value in arrays[0][0].items():
        if name != "meta":  # the config, which records the mode
            np.testing.assert_array_equal(value, arrays[1][0][name], err_msg=name)
    assert [a[1]["config"]["meters"] for a in arrays] == ["original", "all"]
    assert json.loads((runs["all"] / "run.json").read_text())["settings"]["meters"] == "all"


def test_a_mixed_meter_run_resumes_and_evaluates_only_in_its_mode(mixed, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main([str(mixed), "--out", str(out), "--meters", "all", *TINY]) == 0
    capsys.readouterr()
    assert train.main(["--resume", str(out), "--meters", "original", "--batches", "4"]) == 2
    assert "--meters original contradicts this run's all" in capsys.readouterr().err
    assert train.main(["--resume", str(out), "--batches", "4", "--no-progress"]) == 0
    assert evaluate.main([str(out / "latest.npz"), str(mixed), "--train-dir", str(mixed), "--meters", "original"]) == 2
    assert "trained on music read with meters all" in capsys.readouterr().err
    assert evaluate.main([str(out / "latest.npz"), str(mixed), "--train-dir", str(mixed),
                          "--json", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["meters"] == "all" and result["pieces"] == 5


def test_inspect_reads_a_piece_as_its_model_learnt(tmp_path, capsys):
    """A model of meters "all" inspects a waltz whole, with its bar positions; the original's
    reading would end it at its first step."""
    from biaxial_cu import Model
    from biaxial_cu import inspect as inspect_cli

    write_state_matrix(random_canonical_roll(np.random.default_rng(1), 30), tmp_path / "w.mid", meter="3/4")
    Model((6,), (4,), backend="numpy", seed=0, meters="all").save(tmp_path / "all.npz")
    Model((6,), (4,), backend="numpy", seed=0).save(tmp_path / "original.npz")
    assert inspect_cli.main([str(tmp_path / "all.npz"), str(tmp_path / "w.mid"), "--out", str(tmp_path / "a")]) == 0
    assert "w.mid: 30 steps" in capsys.readouterr().out  # a canonical roll (silent last step) reads back whole
    assert inspect_cli.main([str(tmp_path / "original.npz"), str(tmp_path / "w.mid"), "--out", str(tmp_path / "o")]) == 2
    assert "need at least 2" in capsys.readouterr().err
