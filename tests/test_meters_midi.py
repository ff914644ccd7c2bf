"""Every meter in the MIDI reader and writer (MODEL_SPEC.md section 8; midi.py's Meters section):
bar lengths, bar positions, meters="all" against the original rule, time signatures written
and read back, hostile signatures, the shipped corpus unchanged, and the corpus export's
other meters (corpus.py --meters).

At ticks_per_beat 480 a step (a sixteenth) is 120 ticks and a 4/4 bar 1920 ticks.
"""
import hashlib
import time

import mido
import numpy as np
import pytest

from biaxial_cu import MidiError, corpus
from biaxial_cu.data import shipped_corpus_dir
from biaxial_cu.midi import (METER_MODES, bar_positions, bar_steps, parse_meter,
                             read_state_matrix, write_state_matrix)

from conftest import import_or_needs
from make_hostile_midi import END_OF_TRACK, event, one_track
from midi_helpers import (expected_roll, meter, off, on, random_canonical_roll, read_quietly,
                          read_warned, save_midi)

C4 = 60  # n = 36
STEP = 120  # ticks per step at tpb 480


def melody(n_steps):
    """(tick, message) pairs: C4 and E4 in turn, struck every 4 steps and held 3, the last
    released before step n_steps."""
    events = []
    for step in range(0, n_steps - 3, 4):
        pitch = C4 if step % 8 == 0 else 64
        events += [(step * STEP, on(pitch)), ((step + 3) * STEP, off(pitch))]
    return events


def melody_file(path, n_steps, signatures=()):
    """A one-track file of melody(n_steps) and (step, numerator, denominator) signatures, each
    before the notes of its tick, ending at step n_steps - 1 (so T = n_steps)."""
    timed = [(step * STEP, meter(n, d)) for step, n, d in signatures] + melody(n_steps)
    timed.sort(key=lambda pair: pair[0])  # stable: signatures first at a tick
    return save_midi(path, [timed], end_ticks=[(n_steps - 1) * STEP])


def read_all(path, **kwargs):
    """(S, pos) read with meters="all", failing on any warning."""
    return read_quietly(path, meters="all", return_bar_positions=True, **kwargs)


# ----------------------------------------------------------------------------- bar lengths

# (numerator, denominator, steps): 16 N / D rounded half up, at least 1.
BAR_STEP_CASES = [
    (4, 4, 16), (2, 4, 8), (2, 2, 16), (4, 8, 8), (3, 4, 12), (6, 8, 12), (9, 8, 18),
    (12, 8, 24), (5, 4, 20), (7, 8, 14), (3, 8, 6), (5, 16, 5), (3, 2, 24), (1, 1, 16),
    (3, 32, 2),  # 1.5 rounded up
    (1, 32, 1),  # 0.5 rounded up
    (5, 32, 3),  # 2.5 rounded up
    (1, 64, 1),  # 0.25 -> 0 -> at least 1
    (255, 1, 4080),  # the largest a MIDI file can give
    (0, 4, 1),  # numerator 0 (only a hostile file has it): at least 1
    (255, 2**255, 1),  # the largest denominator a MIDI file can give
]


@pytest.mark.parametrize("numerator, denominator, steps", BAR_STEP_CASES)
def test_bar_steps_rounds_half_up_and_is_at_least_one(numerator, denominator, steps):
    assert bar_steps(numerator, denominator) == steps
    assert type(bar_steps(numerator, denominator)) is int


@pytest.mark.parametrize("numerator, denominator", [(3, 0), (-1, 4), (3, -4), (3.0, 4),
                                                    (True, 4), ("3", 4), (3, None)])
def test_bar_steps_refuses_what_no_file_can_hold(numerator, denominator):
    with pytest.raises(ValueError, match="meter's"):
        bar_steps(numerator, denominator)


@pytest.mark.parametrize("meter_text, expected", [
    ("3/4", (3, 4)), ("6/8", (6, 8)), (" 12 / 8 ", (12, 8)), ("255/1", (255, 1)),
    ("3/64", (3, 64)), ((3, 4), (3, 4)), ([7, 8], (7, 8)), ((np.int64(5), np.int32(4)), (5, 4)),
])
def test_parse_meter(meter_text, expected):
    assert parse_meter(meter_text) == expected
    assert all(type(part) is int for part in parse_meter(meter_text))


@pytest.mark.parametrize("bad", ["3/5", "3/0", "0/4", "-3/4", "256/4", "3/128", "3/4/4", "3",
                                 "", "a/b", "3.0/4", "3/4.0", (3,), (3, 4, 5), (3, 6), (0, 4),
                                 (True, 4), ("3", "4"), 3, 0.75, None, {"3/4"}])
def test_parse_meter_refuses_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="meter"):
        parse_meter(bad)


def test_meter_modes():
    assert METER_MODES == ("original", "all")


# ----------------------------------------------------------------------------- bar positions


def test_bar_positions_without_changes_count_4_4_bars():
    pos = bar_positions([], 40)
    assert pos.dtype == np.int32 and pos.shape == (40,)
    np.testing.assert_array_equal(pos, np.arange(40) % 16)
    assert bar_positions([], 0).shape == (0,)


def test_bar_positions_follow_each_change_from_its_step():
    pos = bar_positions([(64, 12), (70, 6), (70, 5), (81, 3), (500, 7)], 90)
    expected = np.concatenate([np.arange(64) % 16, np.arange(6) % 12, np.arange(11) % 5,
                               np.arange(9) % 3])
    np.testing.assert_array_equal(pos, expected)  # at 70 the last of two changes wins


@pytest.mark.parametrize("bad", [[(5, 12), (3, 12)], [(-1, 12)], [(5, 0)], [(5, -3)]])
def test_bar_positions_refuse_bad_changes(bad):
    with pytest.raises(ValueError):
        bar_positions(bad, 20)


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("numerator, denominator, steps", [
    (3, 4, 12), (6, 8, 12), (9, 8, 18), (5, 4, 20), (7, 8, 14), (12, 8, 24), (2, 4, 8),
    (4, 4, 16)])
def test_meter_from_step_0(tmp_path, numerator, denominator, steps):
    plain = read_quietly(melody_file(tmp_path / "plain.mid", 100))
    path = melody_file(tmp_path / "m.mid", 100, [(0, numerator, denominator)])
    S, pos = read_all(path)
    np.testing.assert_array_equal(S, plain)  # no signature ends the piece
    assert pos.dtype == np.int32 and pos.shape == (S.shape[0],)
    np.testing.assert_array_equal(pos, np.arange(S.shape[0]) % steps)


def test_original_mode_still_ends_the_piece_with_the_same_warning(tmp_path):
    path = melody_file(tmp_path / "waltz.mid", 40, [(8, 3, 4)])
    S, messages = read_warned(path)
    assert messages == [(f"{path}: time signature 3/4 at step 8 ends the piece there (only "
                         "meters with numerator 2 or 4 are read); kept 9 steps")]
    assert S.shape == (9, 78, 2)
    (S_explicit, pos), _ = read_warned(path, meters="original", return_bar_positions=True)
    np.testing.assert_array_equal(S_explicit, S)
    np.testing.assert_array_equal(pos, np.arange(9))


def test_original_mode_positions_follow_the_signatures_before_the_ending(tmp_path):
    # 2/4 at step 32 restarts 8-step bars; the 3/4 at step 44 ends the piece and is not followed
    path = melody_file(tmp_path / "f.mid", 60, [(0, 4, 4), (32, 2, 4), (44, 3, 4)])
    (S, pos), _ = read_warned(path, return_bar_positions=True)
    assert S.shape == (45, 78, 2)
    np.testing.assert_array_equal(pos, np.concatenate([np.arange(32) % 16, np.arange(13) % 8]))
    S_all, pos_all = read_all(path)
    np.testing.assert_array_equal(S_all[:44], S[:44])  # step 44's notes come after the 3/4
    assert pos_all[44] == 0 and pos_all[45] == 1  # "all": the 3/4 starts a bar at 44


def test_change_from_4_4_to_3_4_at_step_64(tmp_path):
    path = melody_file(tmp_path / "f.mid", 120, [(0, 4, 4), (64, 3, 4)])
    S, pos = read_all(path)
    assert S.shape[0] == 120
    expected = np.concatenate([np.tile(np.arange(16), 4), np.tile(np.arange(12), 5)[:56]])
    np.testing.assert_array_equal(pos, expected)
    np.testing.assert_array_equal(S, read_quietly(melody_file(tmp_path / "p.mid", 120)))


@pytest.mark.parametrize("numerator, denominator, steps", [(3, 4, 12), (4, 4, 16)])
def test_signature_off_the_bar_line_restarts_the_bar(tmp_path, numerator, denominator, steps):
    path = melody_file(tmp_path / "f.mid", 40, [(5, numerator, denominator)])
    S, pos = read_all(path)
    np.testing.assert_array_equal(pos[:5], np.arange(5))
    np.testing.assert_array_equal(pos[5:], np.arange(S.shape[0] - 5) % steps)


def test_signature_tick_is_rounded_to_a_step_like_a_note(tmp_path):
    # tick 539 is step 4 (539 / 120 = 4.49), tick 1260 is step 11 (10.5 rounds up)
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (539, meter(3, 4)), (1260, meter(2, 4)),
                                           (3000, off(C4))]])
    _, pos = read_all(path)
    np.testing.assert_array_equal(pos, np.concatenate([np.arange(4), np.arange(7),
                                                       np.arange(15) % 8]))


def test_two_signatures_at_one_tick_the_last_wins(tmp_path):
    one_track_file = save_midi(tmp_path / "a.mid", [[(0, on(C4)), (960, meter(3, 4)),
                                                     (960, meter(6, 8)), (4800, off(C4))]])
    _, pos = read_all(one_track_file)  # 6/8 at step 8: 12-step bars, as 3/4 would be
    np.testing.assert_array_equal(pos[8:], np.arange(33) % 12)
    one_track_file = save_midi(tmp_path / "b.mid", [[(0, on(C4)), (960, meter(6, 8)),
                                                     (960, meter(5, 4)), (4800, off(C4))]])
    _, pos = read_all(one_track_file)
    np.testing.assert_array_equal(pos[8:], np.arange(33) % 20)
    # at one tick in two tracks: merge order is track order, so the second track's wins
    two_tracks = save_midi(tmp_path / "c.mid", [[(0, on(C4)), (960, meter(5, 4)),
                                                 (4800, off(C4))], [(960, meter(7, 8))]])
    _, pos = read_all(two_tracks)
    np.testing.assert_array_equal(pos[8:], np.arange(33) % 14)
    # at two ticks of one step: the later tick wins, whatever the track order
    two_ticks = save_midi(tmp_path / "d.mid", [[(0, on(C4)), (970, meter(5, 4)),
                                                (4800, off(C4))], [(950, meter(7, 8))]])
    _, pos = read_all(two_ticks)
    np.testing.assert_array_equal(pos[8:], np.arange(33) % 20)


@pytest.mark.parametrize("numerator, denominator, steps", [(3, 32, 2), (5, 16, 5), (3, 2, 24),
                                                           (1, 1, 16), (3, 1, 48), (1, 64, 1),
                                                           (7, 2, 56)])
def test_odd_denominators(tmp_path, numerator, denominator, steps):
    path = melody_file(tmp_path / "f.mid", 100, [(0, 4, 4), (16, numerator, denominator)])
    S, pos = read_all(path)
    np.testing.assert_array_equal(pos, np.concatenate([np.arange(16),
                                                       np.arange(S.shape[0] - 16) % steps]))


def test_all_mode_with_a_cut_at_max_steps(tmp_path):
    path = melody_file(tmp_path / "f.mid", 100, [(10, 3, 4), (50, 5, 4)])
    (S, pos), messages = read_warned(path, meters="all", return_bar_positions=True,
                                     max_steps=30)
    assert S.shape == (30, 78, 2) and pos.shape == (30,)
    assert len(messages) == 1 and "max_steps=30" in messages[0]
    np.testing.assert_array_equal(pos, np.concatenate([np.arange(10), np.arange(20) % 12]))


def test_return_value_is_a_bare_roll_by_default(tmp_path):
    path = melody_file(tmp_path / "f.mid", 17)
    for meters in METER_MODES:
        S = read_quietly(path, meters=meters)
        assert isinstance(S, np.ndarray) and S.shape == (17, 78, 2)
        S2, pos = read_quietly(path, meters=meters, return_bar_positions=True)
        np.testing.assert_array_equal(S2, S)
        np.testing.assert_array_equal(pos, np.arange(17) % 16)


@pytest.mark.parametrize("bad", ["ALL", "Original", "all ", "", None, 1, ("all",)])
def test_bad_meters_mode_is_refused(tmp_path, bad):
    path = melody_file(tmp_path / "f.mid", 20)
    with pytest.raises(ValueError, match="meters must be one of"):
        read_state_matrix(path, meters=bad)


# ----------------------------------------------------------------------------- hostile signatures


def time_signature_bytes(delta, numerator, exponent, length=4):
    """A time signature meta event from its raw bytes: the denominator is 2**exponent."""
    data = bytes([numerator, exponent, 24, 8, 0])[:length]
    return event(delta, 0xFF, 0x58, length) + data


def note_file(tmp_path, name, *signatures):
    """A one-track file: signature bytes at tick 0, then C4 for 40 steps."""
    payload = b"".join(signatures) + event(0, 0x90, C4, 64) + event(40 * STEP, 0x80, C4, 0)
    path = tmp_path / name
    path.write_bytes(one_track(payload + END_OF_TRACK))
    return path


@pytest.mark.parametrize("numerator, exponent, steps", [
    (255, 0, 4080),  # 255/1: the longest bar a file can hold
    (255, 255, 1),  # 255/2**255: 16 * 255 / 2**255 rounds to 0, at least 1
    (0, 2, 1),  # 0/4: no beats in the bar, at least 1
    (0, 255, 1),
    (200, 100, 1),
])
def test_hostile_signatures_read_with_documented_bar_lengths(tmp_path, numerator, exponent, steps):
    path = note_file(tmp_path, "hostile.mid", time_signature_bytes(0, numerator, exponent))
    S, pos = read_all(path)
    np.testing.assert_array_equal(S, expected_roll(41, [(C4, 0, 40)]))
    np.testing.assert_array_equal(pos, np.arange(41) % steps)
    # the original rule ends the piece at step 0 (numerator not 2 or 4), naming the meter
    (S, pos), messages = read_warned(path, return_bar_positions=True)
    assert S.shape == (1, 78, 2) and pos.tolist() == [0]
    denominator = "1" if exponent == 0 else "4" if exponent == 2 else f"2**{exponent}"
    assert f"time signature {numerator}/{denominator} at step 0" in messages[0]


def test_hostile_signature_with_a_4_numerator_and_huge_denominator(tmp_path):
    path = note_file(tmp_path, "h.mid", time_signature_bytes(0, 4, 255))
    S_original, pos_original = read_quietly(path, return_bar_positions=True)  # 4/x: goes on
    S, pos = read_all(path)
    np.testing.assert_array_equal(S, S_original)
    assert not pos.any() and not pos_original.any()  # bars of one step


def test_time_signature_with_extra_bytes_reads(tmp_path):
    path = note_file(tmp_path, "long.mid", time_signature_bytes(0, 3, 2, length=5))
    _, pos = read_all(path)
    np.testing.assert_array_equal(pos, np.arange(41) % 12)


@pytest.mark.parametrize("length", [0, 1, 2, 3])
def test_cut_short_time_signature_is_a_midi_error(tmp_path, length):
    path = note_file(tmp_path, "short.mid", time_signature_bytes(0, 3, 2, length=length))
    for meters in METER_MODES:
        with pytest.raises(MidiError, match="short.mid"):
            read_state_matrix(path, meters=meters, return_bar_positions=True)


def test_many_signatures_read_fast(tmp_path):
    # 20000 signatures, one per step, alternating 3/4 and 255/1: every step starts a bar
    signatures = [time_signature_bytes(0 if i == 0 else STEP, 3 if i % 2 else 255, 2 if i % 2
                                       else 0) for i in range(20_000)]
    path = note_file(tmp_path, "many.mid", *signatures)
    started = time.perf_counter()
    S, pos = read_all(path)
    assert time.perf_counter() - started < 2
    assert S.shape == (20_040, 78, 2)  # C4 struck at the last signature's step, held 40
    assert not pos[:19_999].any()
    np.testing.assert_array_equal(pos[19_999:], np.arange(41) % 12)  # the last is 3/4


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize("meter_given, steps", [
    ("3/4", 12), ((6, 8), 12), ("9/8", 18), ("5/4", 20), ([7, 8], 14), ("12/8", 24),
    ("3/32", 2), ("4/4", 16), ("2/2", 16), ("255/1", 4080)])
def test_round_trip_with_a_meter(tmp_path, meter_given, steps):
    rng = np.random.default_rng(steps)
    S = random_canonical_roll(rng, 60)
    path = tmp_path / "m.mid"
    write_state_matrix(S, path, meter=meter_given)
    signatures = [m for m in mido.MidiFile(str(path)).tracks[0] if m.type == "time_signature"]
    assert len(signatures) == 1 and signatures[0].time == 0
    assert (signatures[0].numerator, signatures[0].denominator) == parse_meter(meter_given)
    R, pos = read_all(path)
    np.testing.assert_array_equal(R, S)
    np.testing.assert_array_equal(pos, np.arange(60) % steps)


@pytest.mark.parametrize("tpb", [8, 96, 100, 480])
def test_round_trip_with_meter_changes(tmp_path, tpb):
    rng = np.random.default_rng(tpb)
    meters = ["3/4", "6/8", "4/4", "5/4", (7, 8), "2/4", "3/32", "9/8"]
    for trial in range(3):
        n_steps = int(rng.integers(20, 120))
        S = random_canonical_roll(rng, n_steps)
        change_steps = np.sort(rng.integers(0, n_steps, int(rng.integers(1, 6))))
        changes = [(int(step), meters[int(rng.integers(len(meters)))]) for step in change_steps]
        write_state_matrix(S, tmp_path / "c.mid", ticks_per_beat=tpb, meter=changes)
        R, pos = read_all(tmp_path / "c.mid")
        np.testing.assert_array_equal(R, S)
        expected = bar_positions([(step, bar_steps(*parse_meter(m))) for step, m in changes],
                                 n_steps)
        np.testing.assert_array_equal(pos, expected)


def test_positions_the_reader_gives_can_be_written_back(tmp_path):
    changes = [(0, "4/4"), (5, "3/4"), (5, "6/8"), (29, "7/8"), (64, "12/8")]
    S = random_canonical_roll(np.random.default_rng(3), 100)
    write_state_matrix(S, tmp_path / "a.mid", meter=changes)
    R, pos = read_all(tmp_path / "a.mid")
    write_state_matrix(R, tmp_path / "b.mid", meter=changes)
    R2, pos2 = read_all(tmp_path / "b.mid")
    np.testing.assert_array_equal(R2, S)
    np.testing.assert_array_equal(pos2, pos)


def test_round_trip_of_a_roll_sounding_at_the_end_adds_one_step(tmp_path):
    S = np.zeros((30, 78, 2), np.uint8)
    S[3:, 36, 0] = 1
    S[3, 36, 1] = 1
    write_state_matrix(S, tmp_path / "f.mid", meter="3/4")
    R, pos = read_all(tmp_path / "f.mid")
    assert R.shape == (31, 78, 2)  # the release at the tick of step T
    np.testing.assert_array_equal(R[:30], S)
    np.testing.assert_array_equal(pos, np.arange(31) % 12)


def test_signatures_are_written_before_the_notes_of_their_step(tmp_path):
    S = np.zeros((20, 78, 2), np.uint8)
    S[8:12, 36] = [1, 0]
    S[8, 36, 1] = 1
    write_state_matrix(S, tmp_path / "f.mid", ticks_per_beat=100, meter=[(8, "3/4")])
    timed, now = [], 0
    for message in mido.MidiFile(str(tmp_path / "f.mid")).tracks[0]:
        now += message.time
        timed.append((now, message.type))
    assert timed == [(0, "set_tempo"), (200, "time_signature"), (200, "note_on"),
                     (300, "note_off"), (475, "end_of_track")]
    # the original rule ends the piece at the 3/4, before its step's notes
    (R, pos), messages = read_warned(tmp_path / "f.mid", return_bar_positions=True)
    assert R.shape == (9, 78, 2) and not R.any() and "3/4 at step 8" in messages[0]
    np.testing.assert_array_equal(pos, np.arange(9))


def test_no_meter_writes_no_time_signature(tmp_path):
    write_state_matrix(random_canonical_roll(np.random.default_rng(0), 40), tmp_path / "f.mid")
    track = mido.MidiFile(str(tmp_path / "f.mid")).tracks[0]
    assert not [m for m in track if m.type == "time_signature"]


@pytest.mark.parametrize("bad", ["3/5", "0/4", "256/4", (3, 0), [(5, "3/4"), (2, "4/4")],
                                 [(20, "3/4")], [(-1, "3/4")], [("a", "3/4")], [(1.0, "3/4")],
                                 [(0, "3/4", 1)], [0, "3/4"], ["3/4"], 3, {"3/4"}, ("3", "4")])
def test_write_refuses_bad_meters(tmp_path, bad):
    with pytest.raises(ValueError, match="meter"):
        write_state_matrix(np.zeros((20, 78, 2), np.uint8), tmp_path / "bad.mid", meter=bad)
    assert not (tmp_path / "bad.mid").exists()


# ----------------------------------------------------------------------------- the shipped corpus

# sha256 over the shipped files in name order of (name, S.shape, S bytes), S read by the reader
# as it was before meters existed: "original" must keep reading every file exactly so.
SHIPPED_ROLLS_SHA256 = "6b23ad783a9cbd125c9cbb2570ba019235e6ab965e2200aa3d79757042e3ceb3"


@pytest.fixture(scope="module")
def shipped_reads():
    """[(name, (S, pos) read with meters "original", (S, pos) with "all", signatures, tpb)]
    of every shipped file, in name order."""
    reads = []
    for path in sorted(shipped_corpus_dir().glob("*.mid")):
        original = read_quietly(path, meters="original", return_bar_positions=True)
        reads.append((path.name, original, read_all(path), *signatures_of(path)))
    return reads


def signatures_of(path):
    """[(tick, numerator, denominator)] of every time signature in a file, and its tpb."""
    midi = mido.MidiFile(str(path))
    found = []
    for track in midi.tracks:
        now = 0
        for message in track:
            now += message.time
            if message.type == "time_signature":
                found.append((now, message.numerator, message.denominator))
    return found, midi.ticks_per_beat


def test_original_mode_reads_the_shipped_corpus_as_before(shipped_reads):
    digest = hashlib.sha256()
    for name, (S, _), *_ in shipped_reads:
        digest.update(name.encode())
        digest.update(str(S.shape).encode())
        digest.update(S.tobytes())
    assert digest.hexdigest() == SHIPPED_ROLLS_SHA256
    name, (S, _), *_ = shipped_reads[0]
    np.testing.assert_array_equal(read_quietly(shipped_corpus_dir() / name), S)  # the default


def test_all_mode_equals_original_on_the_shipped_4_4_pieces(shipped_reads):
    in_4_4 = []
    for name, (S, pos_original), (S_all, pos), signatures, tpb in shipped_reads:
        if all(n in (2, 4) for _, n, _ in signatures):
            np.testing.assert_array_equal(S_all, S)  # no ending in either mode
            np.testing.assert_array_equal(pos, pos_original)
        if all(bar_steps(n, d) == 16 and tick % (4 * tpb) == 0 for tick, n, d in signatures):
            np.testing.assert_array_equal(pos, np.arange(S.shape[0]) % 16)
            in_4_4.append(name)
    assert len(in_4_4) == len(shipped_reads) == 60  # every shipped chorale is in 4/4


# ----------------------------------------------------------------------------- the corpus export


def test_export_file_names_of_other_works():
    assert corpus.file_name_of("bach/bwv269") == "bwv269.mid"
    assert corpus.file_name_of("bach/bwv248.12-2") == "bwv248.12-2.mid"
    assert corpus.file_name_of("bach/bwv366.krn") == "bwv366.mid"
    assert corpus.file_name_of("haydn/opus1no1/movement1.mxl") == "haydn_opus1no1_movement1.mid"
    assert (corpus.file_name_of("trecento/PMFC_24_20-Padu... serenans.xml")
            == "trecento_PMFC_24_20-Padu..._serenans.mid")


@pytest.mark.parametrize("argv, message", [
    (["--meters", "3/5"], "--meters: a meter's denominator must be a power of two"),
    (["--meters", "3/4,x"], "--meters: a meter is written N/D"),
    (["--count", "0"], "--count must be >= 1 (or 0 with --meters)"),
    (["--count", "-1", "--meters", "3/4"], "--count must be >= 1"),
    (["--meters", "3/4", "--per-meter", "0"], "--per-meter must be >= 1"),
])
def test_export_refuses_bad_arguments_before_any_work(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        corpus.main(["--out", str(tmp_path / "out")] + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_export_of_a_meter_writes_its_time_signature(tmp_path):
    music21 = import_or_needs("music21", "corpus")
    written = corpus.export_meter(tmp_path, "3/4", count=2, log=lambda line: None)
    assert [path.name for path in written] == ["bwv269.mid", "bwv17.7.mid"]  # Riemenschneider
    for path, name in zip(written, ["bach/bwv269", "bach/bwv17.7"]):
        signatures, _ = signatures_of(path)
        assert signatures == [(0, 3, 4)]
        S, pos = read_all(path)
        assert S.shape[0] >= corpus.MIN_STEPS
        np.testing.assert_array_equal(pos, np.arange(S.shape[0]) % 12)
        music21.corpus.parse(name).write("midi", fp=str(tmp_path / "rendered.mid"))
        np.testing.assert_array_equal(S, read_all(tmp_path / "rendered.mid")[0])
