"""Parallel folder loading and the corpus cache: the same result as a serial, uncached load
(pieces, skipped files, warnings and their order), whatever changed in the folder or the cache."""
import json
import os
import shutil
import sys
import time
import warnings
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from test_data import canonical_roll, write_meter_file

from biaxial_cu import corpus_cache, data
from biaxial_cu.corpus_cache import CorpusCacheWarning, default_cache_dir
from biaxial_cu.data import load_pieces, load_pieces_report, sample_batch, split_pieces
from biaxial_cu.midi import write_state_matrix

pytestmark = pytest.mark.filterwarnings("ignore::biaxial_cu.midi.MidiWarning")  # load() records


# ----------------------------------------------------------------------------- helpers


def age(path, seconds=60):
    """Date a file, or every file under a folder, seconds back: the cache trusts only files
    older than corpus_cache.RACY_NS at its scan, and a test's files were written a moment ago."""
    then = time.time_ns() - seconds * 10**9
    for file in [path] if path.is_file() else Path(path).rglob("*"):
        if file.is_file() and not file.is_symlink():
            os.utime(file, ns=(then, then))


def load(folder, **kwargs):
    """(report, [(category, message), ...]) of one load, every warning recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = load_pieces_report(folder, **kwargs)
    return report, [(w.category, str(w.message)) for w in caught]


def assert_same(a, b):
    """Two loads gave the same pieces (keys, order, arrays), skipped files and warnings."""
    (report_a, said_a), (report_b, said_b) = a, b
    assert list(report_a.pieces) == list(report_b.pieces)
    for key, S in report_a.pieces.items():
        other = report_b.pieces[key]
        assert S.dtype == other.dtype == np.uint8 and S.shape == other.shape, key
        assert np.array_equal(S, other), key
    assert report_a.skipped == report_b.skipped
    assert said_a == said_b


@pytest.fixture(scope="module")
def written_folder(tmp_path_factory):
    """Eight files: pieces of several lengths, two cut and one ended by a warning, two too
    short (one of them the ended one), one unreadable; every file dated a minute back."""
    root = tmp_path_factory.mktemp("written") / "music"
    (root / "sub").mkdir(parents=True)
    for k, steps in enumerate((130, 170, 210, 290)):  # p3.mid is cut by max_steps=256
        write_state_matrix(canonical_roll(steps, k), root / f"p{k}.mid")
    write_state_matrix(canonical_roll(300, 9), root / "sub" / "long.mid")  # cut by max_steps=256
    write_state_matrix(canonical_roll(60, 10), root / "sub" / "short.mid")
    write_meter_file(root / "waltz.mid", 3, 400)  # ended at step 0 by its 3/4: too short
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    age(root)
    return root


@pytest.fixture
def folder(written_folder, tmp_path):
    """A test's own copy of written_folder (copied with the files' dates)."""
    return Path(shutil.copytree(written_folder, tmp_path / "music"))


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


OPTIONS = {"max_steps": 256}


# ----------------------------------------------------------------------------- parallel


@pytest.mark.slow
def test_parallel_load_equals_serial_load(folder, cache_dir, monkeypatch):
    monkeypatch.setattr(data, "PARALLEL_MIN_FILES", 1)  # a pool even for a small folder
    serial = load(folder, workers=1, cache=False, **OPTIONS)
    assert serial[0].files_read == 8 and len(serial[1]) == 4  # 2 cut, 1 ended, 1 broken
    assert_same(serial, load(folder, workers=2, cache=False, **OPTIONS))
    built = load(folder, workers=2, cache_dir=cache_dir, **OPTIONS)  # read in the pool, cached
    assert built[0].files_read == 8
    assert_same(serial, built)


def test_serial_load_by_default_for_a_small_folder(folder, monkeypatch):
    monkeypatch.setattr(data, "ProcessPoolExecutor", None)  # any use of a pool would fail
    assert load(folder, workers=4, cache=False)[0].files_read == 8


def test_a_program_read_from_stdin_reads_in_its_own_process(folder, monkeypatch):
    """Workers would import __main__ from its file, which '<stdin>' is not: no pool at all."""
    monkeypatch.setattr(data, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(data, "ProcessPoolExecutor", None)  # any use of a pool would fail
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    monkeypatch.setattr(main, "__file__", "<stdin>", raising=False)
    report, said = load(folder, workers=2, cache=False)
    assert report.files_read == 8 and not [w for w in said if w[0] is RuntimeWarning]


class FakePool:
    """A ProcessPoolExecutor stand-in that reads in this process and, after `good` files,
    raises `error` from the results, as a pool whose worker died would."""

    def __init__(self, good, error):
        self.good, self.error, self.shutdowns = good, error, []
        FAKE_POOLS.append(self)

    def map(self, fn, tasks, chunksize):
        for k, task in enumerate(tasks):
            if k == self.good:
                raise self.error
            yield fn(task)

    def shutdown(self, wait, cancel_futures):
        self.shutdowns.append((wait, cancel_futures))


FAKE_POOLS = []  # the FakePools of the running test


def fake_pool(monkeypatch, good, error):
    FAKE_POOLS.clear()
    monkeypatch.setattr(data, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(data, "ProcessPoolExecutor", lambda *args, **kwargs: FakePool(good, error))


def test_a_broken_pool_leaves_the_rest_to_this_process(folder, monkeypatch):
    serial = load(folder, workers=1, cache=False, **OPTIONS)
    fake_pool(monkeypatch, 4, BrokenProcessPool("a worker died"))
    report, said = load(folder, workers=2, cache=False, **OPTIONS)
    assert said[0][0] is RuntimeWarning and "reading the other 4 files in this process" in said[0][1]
    assert "BrokenProcessPool: a worker died" in said[0][1]
    assert_same(serial, (report, said[1:]))
    assert report.files_read == 8 and FAKE_POOLS[0].shutdowns == [(True, True)]


def test_ctrl_c_while_reading_in_the_pool_propagates_and_leaves_no_file(folder, cache_dir, monkeypatch):
    fake_pool(monkeypatch, 3, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        load_pieces(folder, workers=2, cache_dir=cache_dir)
    assert FAKE_POOLS[0].shutdowns == [(True, True)]  # queued work cancelled
    assert [p.suffix for p in cache_dir.iterdir()] == [".lock"]  # the half-written array deleted


# ----------------------------------------------------------------------------- the cache


def test_cached_load_equals_uncached_load(folder, cache_dir):
    uncached = load(folder, cache=False, **OPTIONS)
    built = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert built[0].files_read == 8 and built[0].cache_index.parent == cache_dir
    cached = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert cached[0].files_read == 0  # nothing parsed: every piece mapped, every warning stored
    assert_same(uncached, built)
    assert_same(uncached, cached)
    assert cached[0].summary() == uncached[0].summary()
    piece = cached[0].pieces["p0.mid"]
    assert not piece.flags.writeable  # a view of the read-only map
    with pytest.raises(ValueError):
        piece[0, 0, 0] = 1


def test_the_warning_budget_is_the_same_from_the_cache(folder, cache_dir):
    for k in range(11):
        (folder / f"bad{k:02d}.mid").write_bytes(b"not midi")
    age(folder)
    uncached = load(folder, cache=False, **OPTIONS)
    assert len(uncached[1]) == data.MAX_LOAD_WARNINGS + 1 and "5 more warnings" in uncached[1][-1][1]
    load(folder, cache_dir=cache_dir, **OPTIONS)
    cached = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert cached[0].files_read == 0
    assert_same(uncached, cached)


def test_min_steps_applies_at_load_so_one_cache_serves_every_length(folder, cache_dir):
    load(folder, cache_dir=cache_dir, **OPTIONS)
    for min_steps in (1, 60, 61, 200):
        cached = load(folder, cache_dir=cache_dir, min_steps=min_steps, **OPTIONS)
        assert cached[0].files_read == 0
        assert_same(load(folder, cache=False, min_steps=min_steps, **OPTIONS), cached)


def test_cached_warnings_name_the_folder_as_this_load_gives_it(folder, cache_dir, monkeypatch):
    load(folder, cache_dir=cache_dir, **OPTIONS)
    monkeypatch.chdir(folder.parent)
    cached = load(Path("music"), cache_dir=cache_dir, **OPTIONS)
    assert cached[0].files_read == 0  # the same folder by another name: the same cache
    assert_same(load(Path("music"), cache=False, **OPTIONS), cached)
    assert "skipped music/broken.mid: unknown MIDI file format 26465" in [m for _, m in cached[1]]


def test_a_warning_of_another_category_keeps_its_category(folder, cache_dir, monkeypatch):
    read = data.read_state_matrix

    def reader(path, **kwargs):
        if Path(path).name == "p1.mid":
            warnings.warn(f"{path}: something odd", RuntimeWarning)
        return read(path, **kwargs)

    monkeypatch.setattr(data, "read_state_matrix", reader)
    uncached = load(folder, cache=False)
    assert (RuntimeWarning, f"{folder / 'p1.mid'}: something odd") in uncached[1]
    load(folder, cache_dir=cache_dir)
    cached = load(folder, cache_dir=cache_dir)
    assert cached[0].files_read == 0
    assert_same(uncached, cached)


def counting_reader(monkeypatch, folder):
    """Replace the reader by one that records the keys of the files it reads; that record."""
    read, names = data.read_state_matrix, []

    def reader(path, **kwargs):
        names.append(Path(path).relative_to(folder).as_posix())
        return read(path, **kwargs)

    monkeypatch.setattr(data, "read_state_matrix", reader)
    return names


def test_a_changed_file_is_read_again_alone(folder, cache_dir, monkeypatch):
    load(folder, cache_dir=cache_dir, **OPTIONS)
    names = counting_reader(monkeypatch, folder)
    write_state_matrix(canonical_roll(500, 77), folder / "p2.mid")
    age(folder / "p2.mid", 30)  # a new mtime, and old enough to be trusted next time
    changed = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert names == ["p2.mid"] and changed[0].files_read == 1
    assert np.array_equal(changed[0].pieces["p2.mid"], canonical_roll(500, 77)[:256])  # cut at 256
    assert_same(load(folder, cache=False, **OPTIONS), changed)
    assert load(folder, cache_dir=cache_dir, **OPTIONS)[0].files_read == 0
    assert len(list(cache_dir.glob("*.npy"))) == 1  # the replaced array deleted


def test_an_added_and_a_removed_file(folder, cache_dir, monkeypatch):
    load(folder, cache_dir=cache_dir, **OPTIONS)
    names = counting_reader(monkeypatch, folder)
    write_state_matrix(canonical_roll(140, 50), folder / "sub" / "new.mid")
    (folder / "p3.mid").unlink()
    age(folder / "sub" / "new.mid")
    after = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert names == ["sub/new.mid"]
    assert "sub/new.mid" in after[0].pieces and "p3.mid" not in after[0].pieces
    assert_same(load(folder, cache=False, **OPTIONS), after)
    (folder / "p2.mid").unlink()  # removed only: the index is rewritten over the same array
    array = list(cache_dir.glob("*.npy"))
    removed = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert removed[0].files_read == 0 and "p2.mid" not in removed[0].pieces
    assert list(cache_dir.glob("*.npy")) == array
    assert_same(load(folder, cache=False, **OPTIONS), removed)
    assert load(folder, cache_dir=cache_dir, **OPTIONS)[0].files_read == 0


def test_a_file_changed_just_before_the_scan_is_read_again(folder, cache_dir):
    write_state_matrix(canonical_roll(200, 5), folder / "fresh.mid")  # mtime: now
    load(folder, cache_dir=cache_dir, **OPTIONS)
    again = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert again[0].files_read == 1  # its mtime could still change without changing
    assert_same(load(folder, cache=False, **OPTIONS), again)


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs are POSIX")
def test_what_is_not_a_regular_file_is_read_each_time_without_rewriting(folder, cache_dir):
    os.mkfifo(folder / "fifo.mid")
    load(folder, cache_dir=cache_dir, **OPTIONS)
    arrays = list(cache_dir.glob("*.npy"))
    again = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert again[0].files_read == 1 and "not a regular file" in again[0].skipped["fifo.mid"]
    assert list(cache_dir.glob("*.npy")) == arrays
    assert_same(load(folder, cache=False, **OPTIONS), again)


def test_other_options_and_another_version_are_other_caches(folder, cache_dir, monkeypatch):
    load(folder, cache_dir=cache_dir, **OPTIONS)
    for options in ({"max_steps": 100}, {"include_drums": True, **OPTIONS}):
        first = load(folder, cache_dir=cache_dir, **options)
        assert first[0].files_read == 8 and not [w for w in first[1] if w[0] is CorpusCacheWarning]
        assert load(folder, cache_dir=cache_dir, **options)[0].files_read == 0
    assert len(list(cache_dir.glob("*.json"))) == 3
    index = next(p for p in cache_dir.glob("*.json") if '"max_steps":256' in p.read_text()
                 and '"include_drums":false' in p.read_text())
    text = index.read_text()
    index.write_text(text.replace('"version":1', '"version":0'))  # written by another version
    rebuilt = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert rebuilt[0].files_read == 8 and not [w for w in rebuilt[1] if w[0] is CorpusCacheWarning]
    monkeypatch.setattr(corpus_cache, "READER_VERSION", 2)  # the reader changed
    assert load(folder, cache_dir=cache_dir, **OPTIONS)[0].files_read == 8


def damage_index(index):
    rows = json.loads(index.read_text())
    rows["files"]["p1.mid"]["offset"] = rows["steps"]  # a piece beyond the array's end
    index.write_text(json.dumps(rows))


def truncate_array(index):
    array = index.with_name(json.loads(index.read_text())["array"])
    with open(array, "r+b") as f:
        f.truncate(os.path.getsize(array) - 156)


@pytest.mark.parametrize("damage, why", [
    (lambda index: index.write_bytes(b"\x00garbage{"), "not valid JSON"),
    (lambda index: index.write_text("[1, 2]"), "not a corpus cache index"),
    (damage_index, "outside the array"),
    (truncate_array, "truncated"),
    (lambda index: index.with_name(json.loads(index.read_text())["array"]).unlink(), "missing"),
    (lambda index: index.with_name(json.loads(index.read_text())["array"]).write_bytes(b"\x93NUMPY junk"),
     "no valid .npy header"),
])
def test_a_damaged_cache_is_rebuilt_with_one_warning(folder, cache_dir, damage, why):
    uncached = load(folder, cache=False, **OPTIONS)
    built = load(folder, cache_dir=cache_dir, **OPTIONS)
    damage(built[0].cache_index)
    rebuilt = load(folder, cache_dir=cache_dir, **OPTIONS)
    cache_warnings = [message for category, message in rebuilt[1] if category is CorpusCacheWarning]
    assert len(cache_warnings) == 1 and why in cache_warnings[0], cache_warnings
    assert "is damaged" in cache_warnings[0] and cache_warnings[0].endswith("rebuilding")
    assert rebuilt[0].files_read == 8
    assert_same(uncached, (rebuilt[0], [w for w in rebuilt[1] if w[0] is not CorpusCacheWarning]))
    assert_same(uncached, load(folder, cache_dir=cache_dir, **OPTIONS))  # no warning now
    assert len(list(cache_dir.glob("*.npy"))) == 1


LOAD_IN_A_PROCESS = """
import json, sys, warnings
import numpy as np
from biaxial_cu.data import load_pieces_report
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    report = load_pieces_report(sys.argv[1], cache_dir=sys.argv[2], max_steps=256)
print(json.dumps({"files_read": report.files_read, "skipped": report.skipped,
                  "warnings": [[w.category.__name__, str(w.message)] for w in caught],
                  "pieces": {key: [S.shape[0], int(S.astype(np.int64).sum())]
                             for key, S in report.pieces.items()}}))
"""


@pytest.mark.slow
def test_processes_loading_one_folder_at_once_build_its_cache_once(folder, cache_dir):
    """As MPI ranks on one machine do: each gets the same result, no cache warning, and the
    build lock lets one of them read the files while the others wait and then map its cache."""
    import subprocess

    runs = [subprocess.Popen([sys.executable, "-c", LOAD_IN_A_PROCESS, str(folder), str(cache_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        results.append(json.loads(out))
    assert sum(r["files_read"] for r in results) == 8
    for r in results[1:]:
        assert {k: v for k, v in r.items() if k != "files_read"} == \
               {k: v for k, v in results[0].items() if k != "files_read"}
    assert not [w for w in results[0]["warnings"] if w[0] == "CorpusCacheWarning"]
    assert len(list(cache_dir.glob("*.npy"))) == 1


def test_the_music_folder_is_never_written(folder, cache_dir):
    before = sorted((p, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    folder.chmod(0o555)
    try:
        assert_same(load(folder, cache=False, **OPTIONS), load(folder, cache_dir=cache_dir, **OPTIONS))
    finally:
        folder.chmod(0o755)
    assert sorted((p, p.stat().st_mtime_ns) for p in folder.rglob("*")) == before


def test_a_cache_folder_inside_the_music_folder_is_refused(folder, monkeypatch):
    for inside in (folder, folder / "sub" / "cache", folder / "sub" / ".." / "cache"):
        with pytest.raises(ValueError, match="inside the music folder"):
            load_pieces(folder, cache_dir=inside)
    assert load_pieces(folder, cache=False, cache_dir=folder)  # no cache: the folder is unused
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))  # the default inside: no cache
    report, said = load(folder, **OPTIONS)
    assert said[0][0] is CorpusCacheWarning and "inside the music folder" in said[0][1]
    assert report.cache_index is None and not (folder / "cache").exists()


def test_a_cache_folder_that_cannot_be_written_costs_one_warning(folder, tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("a file where the cache folder should be")
    report, said = load(folder, cache_dir=blocked / "cache", **OPTIONS)
    assert said[0][0] is CorpusCacheWarning and "cannot write the corpus cache" in said[0][1]
    assert report.cache_index is None
    assert_same(load(folder, cache=False, **OPTIONS), (report, said[1:]))


def test_a_full_cache_folder_mid_write_costs_one_warning(folder, cache_dir, monkeypatch):
    load(folder, cache_dir=cache_dir, **OPTIONS)
    write_state_matrix(canonical_roll(150, 33), folder / "p0.mid")
    age(folder / "p0.mid", 30)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(corpus_cache, "_write_index", full)
    report, said = load(folder, cache_dir=cache_dir, **OPTIONS)
    assert said[0][0] is CorpusCacheWarning and "No space left on device" in said[0][1]
    assert_same(load(folder, cache=False, **OPTIONS), (report, said[1:]))
    assert len(list(cache_dir.glob("*.npy"))) == 2  # the old one and the orphan, cleaned next time
    monkeypatch.undo()
    assert_same(load(folder, cache=False, **OPTIONS), load(folder, cache_dir=cache_dir, **OPTIONS))
    assert len(list(cache_dir.glob("*.npy"))) == 1 and not list(cache_dir.glob(".*.tmp"))


def test_batches_from_the_mapped_cache_equal_batches_from_memory(folder, cache_dir):
    in_memory = load_pieces(folder, cache=False, min_steps=1, **OPTIONS)
    load_pieces(folder, cache_dir=cache_dir, min_steps=1, **OPTIONS)
    report = load_pieces_report(folder, cache_dir=cache_dir, min_steps=1, **OPTIONS)
    mapped = report.pieces
    assert report.files_read == 0 and report.total_steps == sum(S.shape[0] for S in in_memory.values())
    for seq_len in (16, 128):
        a = sample_batch(in_memory, 12, seq_len, np.random.default_rng(3))
        b = sample_batch(mapped, 12, seq_len, np.random.default_rng(3))
        assert b.flags.writeable and np.array_equal(a, b)
    train_a, val_a = split_pieces(in_memory, 0.3, seed=1)
    train_b, val_b = split_pieces(mapped, 0.3, seed=1)
    assert list(train_a) == list(train_b) and list(val_a) == list(val_b)


def test_an_empty_folder_and_a_folder_of_skips_cache_too(tmp_path, cache_dir):
    (tmp_path / "m").mkdir()
    for _ in range(2):
        report, said = load(tmp_path / "m", cache_dir=cache_dir)
        assert report.pieces == {} and said == [] and report.files_read == 0
    (tmp_path / "m" / "bad.mid").write_bytes(b"junk")
    age(tmp_path / "m" / "bad.mid")
    assert_same(load(tmp_path / "m", cache=False), load(tmp_path / "m", cache_dir=cache_dir))
    assert load(tmp_path / "m", cache_dir=cache_dir)[0].files_read == 0


# ----------------------------------------------------------------------------- where, and arguments


def test_default_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "biaxial_cu"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored (XDG spec)
    if sys.platform.startswith("linux"):
        assert default_cache_dir() == Path.home() / ".cache" / "biaxial_cu"


@pytest.mark.parametrize("kwargs, error", [
    ({"workers": 0}, ValueError), ({"workers": 1.5}, TypeError), ({"workers": True}, TypeError),
    ({"cache": "yes"}, TypeError), ({"cache_dir": 3}, TypeError), ({"include_drums": 1}, TypeError),
    ({"max_steps": 0}, ValueError), ({"max_steps": 2**31}, ValueError), ({"max_steps": "9"}, TypeError),
])
def test_bad_arguments(tmp_path, kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        load_pieces(tmp_path, **kwargs)


# ----------------------------------------------------------------------------- the benchmark


@pytest.mark.slow
def test_the_synthetic_corpus_benchmark_writes_its_result(tmp_path):
    """bench/midi.py --synthetic, small: every part measured, the files read and cached."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, str(root / "bench" / "midi.py"), "--synthetic", "24",
                          "--corpus", str(tmp_path / "corpus"), "--results-dir", str(tmp_path / "results")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (path,) = (tmp_path / "results").glob("midi-*.json")
    result = json.loads(path.read_text())
    assert result["mode"] == "synthetic" and result["files"] == 24 and result["corpus"]["files"] == 24
    assert result["first_load"]["files_read"] == result["first_load_serial"]["files_read"] == 24
    assert result["cached_load"]["files_read"] == 0 and len(result["cached_load"]["runs"]) == 3
    steps = {part["runs"][0]["steps"] for part in (result[name] for name in
             ("first_load", "first_load_serial", "cached_load", "uncached_load"))}
    assert steps == {result["corpus"]["steps"]} and result["corpus"]["uint8_bytes"] == 156 * steps.pop()
    assert set(result["met"]) == set(result["goals"]) and result["median_ms"] > 0
    assert len(list((tmp_path / "corpus").glob("*.mid"))) == 24  # --corpus: kept
