"""Corpus loading, batch sampling, the train/validation split, and the shipped corpus."""
import sys
import time
import warnings
from pathlib import Path

import mido
import numpy as np
import pytest

import biaxial_cu
from biaxial_cu import corpus
from biaxial_cu.data import (LoadReport, load_pieces, load_pieces_report, sample_batch,
                             segment_starts, shipped_corpus_dir, split_pieces)
from biaxial_cu.midi import MidiWarning, read_state_matrix, write_state_matrix
from conftest import import_or_needs


# ----------------------------------------------------------------------------- helpers


def canonical_roll(T, seed):
    """A random canonical S (T, 78, 2): onsets articulated, articulate implies play, last step silent."""
    rng = np.random.default_rng(seed)
    play = rng.random((T, 78)) < 0.1  # (T, 78)
    play[-1] = False
    before = np.vstack([np.zeros((1, 78), bool), play[:-1]])
    articulate = play & (~before | (rng.random((T, 78)) < 0.3))
    return np.stack([play, articulate], axis=-1).astype(np.uint8)


def counting_roll(T):
    """S (T, 78, 2) whose step t holds t in binary on notes 0..15 (play only): start = decode(S[0])."""
    t = np.arange(T)[:, None]  # (T, 1)
    S = np.zeros((T, 78, 2), np.uint8)
    S[:, :16, 0] = (t >> np.arange(16)) & 1
    return S


def decode_step(state):
    """The t that counting_roll stored in state (78, 2)."""
    return int(np.sum(state[:16, 0].astype(np.int64) << np.arange(16)))


def write_meter_file(path, numerator, n_steps):
    """A file that opens with a time signature numerator/4, then notes spanning n_steps steps."""
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=4, time=0))
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=(n_steps - 1) * 120))
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(path)


@pytest.fixture
def music_tree(tmp_path):
    """A nested folder of MIDI files of every kind; returns (root, {key: S of the usable files})."""
    root = tmp_path / "music"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "folder.mid").mkdir()  # a folder with a MIDI name is not a file
    usable = {
        "a.mid": canonical_roll(200, 1),
        "exact.midi": canonical_roll(128, 2),
        "sub/B.MID": canonical_roll(300, 3),
        "sub/d.Mid": canonical_roll(150, 4),
        "sub/deeper/c.midi": canonical_roll(129, 5),
    }
    for key, S in usable.items():
        write_state_matrix(S, root / key)
    write_state_matrix(canonical_roll(40, 6), root / "sub" / "short.mid")
    (root / "notes.txt").write_text("not music")
    (root / "sub" / "cover.mid.txt").write_text("not music either")
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    return root, usable


# ----------------------------------------------------------------------------- loading


def test_load_pieces_finds_every_midi_file_recursively(music_tree):
    root, usable = music_tree
    with pytest.warns(MidiWarning):
        pieces = load_pieces(root)
    assert list(pieces) == sorted(usable)  # keys: relative, '/' separated, sorted, extension kept
    for key, S in usable.items():
        assert pieces[key].dtype == np.uint8
        assert np.array_equal(pieces[key], S), key
    assert "sub/short.mid" not in pieces and "broken.mid" not in pieces


def test_broken_file_gives_exactly_one_warning_naming_it(music_tree):
    root, _ = music_tree
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_pieces(root)
    assert len(caught) == 1
    assert issubclass(caught[0].category, MidiWarning)
    assert "broken.mid" in str(caught[0].message)


def test_unreadable_files_of_several_kinds_are_skipped(tmp_path):
    write_state_matrix(canonical_roll(130, 0), tmp_path / "good.mid")
    (tmp_path / "empty.mid").write_bytes(b"")
    (tmp_path / "text.mid").write_text("hello, this is not MIDI")
    (tmp_path / "truncated.mid").write_bytes((tmp_path / "good.mid").read_bytes()[:30])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = load_pieces_report(tmp_path)
    assert list(report.pieces) == ["good.mid"]
    assert sorted(report.unreadable) == ["empty.mid", "text.mid", "truncated.mid"]
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 3
    for name, message in zip(["empty.mid", "text.mid", "truncated.mid"], messages):
        assert name in message


def test_report_lists_skipped_files_and_summarises(music_tree):
    root, usable = music_tree
    with pytest.warns(MidiWarning):
        started = time.perf_counter()
        report = load_pieces_report(root)
        wall = time.perf_counter() - started
    assert isinstance(report, LoadReport)
    assert list(report.pieces) == sorted(usable)
    assert list(report.skipped) == ["broken.mid", "sub/short.mid"]
    assert report.skipped["sub/short.mid"] == "too short: 40 steps < 128"
    assert report.too_short == ["sub/short.mid"]
    assert report.unreadable == ["broken.mid"]
    assert "too short" not in report.skipped["broken.mid"]
    assert str(root) not in report.skipped["broken.mid"]  # the reason, without the path
    total = sum(S.shape[0] for S in usable.values())
    assert report.summary() == (f"loaded 5 pieces ({total} steps) from {root}; "
                                "skipped 2: 1 too short, 1 unreadable")
    assert 0 < report.seconds <= wall  # the time it took, within the wall time measured around it


def test_min_steps_boundary(music_tree):
    root, _ = music_tree
    with pytest.warns(MidiWarning):
        assert "sub/short.mid" in load_pieces(root, min_steps=40)
    with pytest.warns(MidiWarning):
        assert "sub/short.mid" not in load_pieces(root, min_steps=41)
    with pytest.warns(MidiWarning):
        pieces = load_pieces(root, min_steps=129)
    assert "exact.midi" not in pieces and "sub/deeper/c.midi" in pieces


def test_meter_that_ends_the_piece_is_reported(tmp_path):
    write_meter_file(tmp_path / "waltz.mid", 3, 400)
    write_meter_file(tmp_path / "march.mid", 2, 400)
    with pytest.warns(MidiWarning, match="3/4") as record:
        report = load_pieces_report(tmp_path)
    assert len(record) == 1  # the reader's own warning, passed through once
    assert list(report.pieces) == ["march.mid"]
    assert report.pieces["march.mid"].shape[0] == 400
    reason = report.skipped["waltz.mid"]
    assert reason.startswith("too short: 1 steps < 128") and "3/4" in reason
    assert report.summary().endswith("skipped 1: 1 too short")


def test_include_drums_is_passed_to_the_reader(tmp_path):
    track = mido.MidiTrack()
    track.append(mido.Message("note_on", channel=9, note=38, velocity=90, time=0))
    track.append(mido.Message("note_off", channel=9, note=38, velocity=0, time=200 * 120))
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(tmp_path / "drums.mid")
    assert load_pieces(tmp_path)["drums.mid"].sum() == 0
    assert load_pieces(tmp_path, include_drums=True)["drums.mid"][:, 38 - 24, 0].sum() == 200


def test_empty_folder(tmp_path):
    report = load_pieces_report(tmp_path)
    assert report.pieces == {} and report.skipped == {}
    assert report.summary() == f"loaded 0 pieces (0 steps) from {tmp_path}; skipped none"


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_pieces(tmp_path / "nowhere")
    file = tmp_path / "one.mid"
    write_state_matrix(canonical_roll(130, 0), file)
    with pytest.raises(NotADirectoryError, match="one.mid"):
        load_pieces(file)


@pytest.mark.parametrize("min_steps, error", [(0, ValueError), (-5, ValueError),
                                              (1.5, TypeError), (True, TypeError)])
def test_bad_min_steps(tmp_path, min_steps, error):
    with pytest.raises(error, match="min_steps"):
        load_pieces(tmp_path, min_steps=min_steps)


# ----------------------------------------------------------------------------- sampling


def test_sample_batch_shape_and_content():
    pieces = {"x": counting_roll(300)}
    batch = sample_batch(pieces, batch_size=7, seq_len=50, rng=0)
    assert batch.shape == (7, 50, 78, 2) and batch.dtype == np.uint8
    for segment in batch:
        start = decode_step(segment[0])
        assert np.array_equal(segment, pieces["x"][start:start + 50])


def test_starts_are_multiples_of_16_and_reach_the_last_allowed_start():
    T = 128 + 3 * 16 + 5  # allowed starts 0, 16, 32, 48
    assert list(segment_starts(T, 128)) == [0, 16, 32, 48]
    batch = sample_batch({"x": counting_roll(T)}, batch_size=400, rng=1)
    starts = [decode_step(segment[0]) for segment in batch]
    assert set(starts) == {0, 16, 32, 48}
    counts = np.bincount(np.array(starts) // 16)
    assert counts.min() > 60  # each of the 4 starts about 100 times: uniform


def test_piece_of_exactly_seq_len_is_sampled_at_start_0_only():
    S = counting_roll(128)
    batch = sample_batch({"exact": S}, batch_size=20, seq_len=128, rng=2)
    assert all(np.array_equal(segment, S) for segment in batch)
    # one step longer still only allows start 0; 16 steps longer allows 16 as well
    assert list(segment_starts(129, 128)) == [0]
    assert list(segment_starts(144, 128)) == [0, 16]


def test_short_pieces_are_never_chosen_and_pieces_are_uniform():
    pieces = {"long_a": counting_roll(128), "long_b": counting_roll(128) * 0,
              "short": counting_roll(100)}
    pieces["long_b"][:, 77, 0] = 1  # mark piece b
    batch = sample_batch(pieces, batch_size=300, seq_len=128, rng=3)
    from_b = batch[:, 0, 77, 0] == 1
    assert 100 < from_b.sum() < 200
    assert all(np.array_equal(segment, pieces["long_a"]) for segment in batch[~from_b])


def test_sampling_is_reproducible_and_independent_of_dict_order():
    pieces = {f"p{k:02d}": counting_roll(160 + 17 * k) for k in range(8)}
    reordered = dict(reversed(list(pieces.items())))
    first = sample_batch(pieces, batch_size=10, seq_len=64, rng=42)
    assert np.array_equal(first, sample_batch(reordered, batch_size=10, seq_len=64, rng=42))
    assert np.array_equal(first, sample_batch(pieces, 10, 64, rng=np.random.default_rng(42)))
    assert not np.array_equal(first, sample_batch(pieces, 10, 64, rng=43))
    generator = np.random.default_rng(7)
    a, b = sample_batch(pieces, 4, 64, generator), sample_batch(pieces, 4, 64, generator)
    assert not np.array_equal(a, b)  # the generator advances
    assert sample_batch(pieces, 3, 64).shape == (3, 64, 78, 2)  # rng=None works


def test_no_eligible_piece_raises():
    with pytest.raises(ValueError, match="seq_len=128"):
        sample_batch({"short": counting_roll(127)})
    with pytest.raises(ValueError, match="no piece"):
        sample_batch({})


@pytest.mark.parametrize("kwargs, error", [
    ({"batch_size": 0}, ValueError), ({"seq_len": 0}, ValueError),
    ({"batch_size": 2.0}, TypeError), ({"rng": "seed"}, TypeError),
])
def test_bad_sampling_arguments(kwargs, error):
    with pytest.raises(error):
        sample_batch({"x": counting_roll(200)}, **kwargs)


def test_bad_pieces():
    with pytest.raises(ValueError, match="shape"):
        sample_batch({"x": np.zeros((200, 77, 2), np.uint8)})
    with pytest.raises(TypeError, match="dict"):
        sample_batch([counting_roll(200)])


# ----------------------------------------------------------------------------- split


def named_pieces(n):
    return {f"piece{k:03d}.mid": np.full((130, 78, 2), k % 2, np.uint8) for k in range(n)}


@pytest.mark.parametrize("n, fraction, n_validation", [
    (10, 0.1, 1), (10, 0.25, 2), (10, 0.5, 5), (20, 0.1, 2), (38, 0.1, 4),
    (2, 0.1, 1), (3, 0.01, 1), (2, 0.9, 1), (1, 0.5, 0), (1, 0.1, 0), (0, 0.1, 0),
    (10, 0.0, 0), (5, 0.95, 4),
])
def test_split_sizes(n, fraction, n_validation):
    pieces = named_pieces(n)
    train, validation = split_pieces(pieces, validation_fraction=fraction, seed=0)
    assert len(validation) == n_validation
    assert len(train) == n - n_validation
    assert set(train).isdisjoint(validation)
    assert set(train) | set(validation) == set(pieces)
    assert list(train) == sorted(train) and list(validation) == sorted(validation)
    for key in validation:
        assert validation[key] is pieces[key]


def test_split_is_seeded():
    pieces = named_pieces(30)
    first = split_pieces(pieces, 0.2, seed=1)[1]
    assert list(first) == list(split_pieces(dict(reversed(list(pieces.items()))), 0.2, seed=1)[1])
    others = {tuple(split_pieces(pieces, 0.2, seed=s)[1]) for s in range(2, 8)}
    assert len(others | {tuple(first)}) > 1


@pytest.mark.parametrize("fraction, error", [(1.0, ValueError), (-0.1, ValueError),
                                             (float("nan"), ValueError), ("0.1", TypeError)])
def test_bad_fraction(fraction, error):
    with pytest.raises(error, match="validation_fraction"):
        split_pieces(named_pieces(4), fraction)


# ----------------------------------------------------------------------------- shipped corpus


def test_shipped_corpus_loads_cleanly():
    folder = shipped_corpus_dir()
    assert folder == Path(biaxial_cu.__file__).resolve().parent / "corpus_midi"
    assert (folder / "README.txt").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        report = load_pieces_report(folder)
    assert report.skipped == {}
    assert len(report.pieces) >= 30
    assert all(S.shape[0] >= 128 and S.shape[1:] == (78, 2) for S in report.pieces.values())
    assert all(key.endswith(".mid") and "/" not in key for key in report.pieces)
    assert all(S[:, :, 0].any() for S in report.pieces.values())  # every piece has notes
    batch = sample_batch(report.pieces, batch_size=4, seq_len=128, rng=0)
    assert batch.shape == (4, 128, 78, 2) and batch[:, :, :, 0].any()


def test_shipped_corpus_is_small():
    files = list(shipped_corpus_dir().glob("*.mid"))
    assert sum(f.stat().st_size for f in files) < 1_000_000


# ----------------------------------------------------------------------------- the export script


def test_corpus_file_names():
    assert corpus.file_name_of("bach/bwv253") == "bwv253.mid"
    assert corpus.file_name_of("bach/bwv248.12-2") == "bwv248.12-2.mid"


def test_corpus_export_without_music21_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "music21", None)  # import music21 now raises ImportError
    with pytest.raises(ImportError, match=r"biaxial_cu\[corpus\]"):
        corpus.import_music21()
    assert corpus.main(["--out", str(tmp_path)]) == 2
    assert "music21" in capsys.readouterr().err


def test_corpus_meter_filter():
    music21 = import_or_needs("music21", "corpus")

    def score_with(*meters):
        part = music21.stream.Part()
        for meter in meters:
            measure = music21.stream.Measure()
            measure.append(music21.meter.TimeSignature(meter))
            measure.append(music21.note.Note("C4", quarterLength=4))
            part.append(measure)
        return music21.stream.Score([part])

    assert corpus.has_duple_meter_throughout(score_with("4/4", "2/4"), music21)
    assert not corpus.has_duple_meter_throughout(score_with("3/4"), music21)
    assert not corpus.has_duple_meter_throughout(score_with("4/4", "3/4"), music21)
    assert not corpus.has_duple_meter_throughout(music21.stream.Score(), music21)
    assert corpus.meters_of(score_with("4/4", "3/4", "4/4"), music21) == "4/4, 3/4"


def test_corpus_export_matches_the_shipped_files(tmp_path):
    """Re-export the first few chorales: same choice, names and rolls as the shipped files."""
    import_or_needs("music21", "corpus")
    written = corpus.export_chorales(tmp_path, count=3, log=lambda line: None)
    assert [p.name for p in written] == ["bwv347.mid", "bwv153.1.mid", "bwv86.6.mid"]
    for path in written:
        shipped = shipped_corpus_dir() / path.name
        assert np.array_equal(read_state_matrix(path), read_state_matrix(shipped))


# ----------------------------------------------------------------------------- hostile files


def _one_line_each(caught):
    """Every recorded warning, formatted as Python prints it, is one line (no source line)."""
    for w in caught:
        text = warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
        assert text.count("\n") == 1, text


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev are POSIX")
def test_fifos_devices_and_huge_files_are_skipped_with_one_line_each(tmp_path):
    import os
    from biaxial_cu.midi import MAX_FILE_BYTES
    write_state_matrix(canonical_roll(130, 0), tmp_path / "good.mid")
    os.mkfifo(tmp_path / "fifo.mid")  # opened for reading, a FIFO without writer would hang
    (tmp_path / "zero.mid").symlink_to("/dev/zero")  # endless
    (tmp_path / "random.midi").symlink_to("/dev/urandom")  # endless
    (tmp_path / "folder.mid").mkdir()
    with open(tmp_path / "huge.mid", "wb") as f:  # sparse: costs no disk
        f.write((tmp_path / "good.mid").read_bytes())
        f.truncate(MAX_FILE_BYTES + 1)
    (tmp_path / "dangling.mid").symlink_to(tmp_path / "nowhere.mid")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = load_pieces_report(tmp_path)
    assert time.perf_counter() - started < 10
    assert list(report.pieces) == ["good.mid"]
    assert sorted(report.unreadable) == ["dangling.mid", "fifo.mid", "huge.mid", "random.midi",
                                         "zero.mid"]
    assert "not a regular file" in report.skipped["fifo.mid"]
    assert "not a regular file" in report.skipped["zero.mid"]
    assert "64 MB" in report.skipped["huge.mid"]
    assert len(caught) == 5 and all(issubclass(w.category, MidiWarning) for w in caught)
    _one_line_each(caught)


def test_a_warning_while_reading_is_passed_on_in_one_line(tmp_path):
    path = tmp_path / "long.mid"
    write_state_matrix(canonical_roll(300, 1), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_pieces(tmp_path, min_steps=2, max_steps=100)
    assert len(caught) == 1 and "max_steps=100" in str(caught[0].message)
    _one_line_each(caught)


def test_many_unreadable_files_give_ten_warnings_and_one_summary(tmp_path):
    from biaxial_cu.data import MAX_LOAD_WARNINGS
    write_state_matrix(canonical_roll(130, 0), tmp_path / "good.mid")
    for k in range(400):
        (tmp_path / f"bad{k:03d}.mid").write_bytes(b"not midi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = load_pieces_report(tmp_path)
    assert list(report.pieces) == ["good.mid"] and len(report.unreadable) == 400  # all still listed
    assert len(caught) == MAX_LOAD_WARNINGS + 1 == 11
    assert all(issubclass(w.category, MidiWarning) for w in caught)
    assert all("bad" in str(w.message) and "no MThd" in str(w.message) for w in caught[:10])
    last = str(caught[-1].message)
    assert "390 more warnings" in last and "about files 390: bad010.mid, bad011.mid, bad012.mid and 387 more" in last
    _one_line_each(caught)
    with warnings.catch_warnings(record=True) as caught:  # a few: each said, no summary
        warnings.simplefilter("always")
        for k in range(5, 400):
            (tmp_path / f"bad{k:03d}.mid").unlink()
        load_pieces_report(tmp_path)
    assert len(caught) == 5 and "more warning" not in " ".join(str(w.message) for w in caught)


@pytest.mark.skipif(sys.platform == "win32", reason="newlines in file names are POSIX")
def test_a_file_name_with_a_newline_is_shown_escaped_on_one_line(tmp_path):
    (tmp_path / "two\nlines.mid").write_bytes(b"not midi")
    write_state_matrix(canonical_roll(300, 1), tmp_path / "long\nname.mid")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = load_pieces_report(tmp_path, min_steps=2, max_steps=100)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2, messages
    assert "'" + str(tmp_path / "long\\nname.mid") + "'" in messages[0] and "max_steps=100" in messages[0]
    assert "'" + str(tmp_path / "two\\nlines.mid") + "'" in messages[1] and "no MThd" in messages[1]
    assert report.unreadable == ["two\nlines.mid"] and "no MThd" in report.skipped["two\nlines.mid"]
    assert report.skipped["two\nlines.mid"].startswith("not a standard")  # the name stripped
    _one_line_each(caught)
