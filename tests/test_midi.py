"""MIDI <-> state matrix (MODEL_SPEC.md section 1): hand-computed spec examples, round trips,
hostile files.

Steps are sixteenths: at ticks_per_beat (tpb) 480 a step is q = 120 ticks and step t covers
ticks [120 t - 60, 120 t + 60). Note index n = pitch - 24, so middle C (60) is n = 36.
"""
import sys
import tracemalloc
import warnings
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest

from biaxial_cu import MidiError
from biaxial_cu.midi import MidiWarning, read_state_matrix, write_state_matrix

from make_hostile_midi import (hostile_contents, write_hostile_files, write_huge_delta,
                               write_length_lies, write_long_held_note, write_many_tracks,
                               write_mutants)
from midi_helpers import (expected_roll, meter, note_events, off, on, random_canonical_roll,
                          read_quietly, read_warned, save_midi, text)

C4 = 60  # n = 36


def assert_well_formed(S):
    assert S.dtype == np.uint8 and S.ndim == 3 and S.shape[1:] == (78, 2) and S.shape[0] >= 1
    assert set(np.unique(S).tolist()) <= {0, 1}
    assert np.all(S[:, :, 1] <= S[:, :, 0])  # articulate implies play


# ----------------------------------------------------------------------------- snapping

# (tpb, tick, step) computed by hand: step = floor(tick / q + 1/2), q = tpb / 4.
SNAP_CASES = [
    (480, 0, 0), (480, 59, 0), (480, 60, 1), (480, 179, 1), (480, 180, 2), (480, 1919, 16),
    (96, 11, 0), (96, 12, 1), (96, 35, 1), (96, 36, 2),
    # q = 25: boundaries at 12.5, 37.5, 62.5
    (100, 12, 0), (100, 13, 1), (100, 37, 1), (100, 38, 2), (100, 62, 2), (100, 63, 3),
    # q = 1.75: boundaries at 0.875, 2.625, 4.375, 6.125
    (7, 0, 0), (7, 1, 1), (7, 2, 1), (7, 3, 2), (7, 4, 2), (7, 5, 3), (7, 6, 3), (7, 7, 4),
    # q = 55 (the original's 220): boundaries at 27.5, 82.5
    (220, 27, 0), (220, 28, 1), (220, 82, 1), (220, 83, 2),
    # q = 0.25: four steps per tick
    (1, 1, 4), (1, 3, 12),
]


@pytest.mark.parametrize("tpb, tick, step", SNAP_CASES)
def test_event_snaps_to_nearest_step(tmp_path, tpb, tick, step):
    path = save_midi(tmp_path / "snap.mid", [[(tick, on(C4))]], ticks_per_beat=tpb)
    S = read_quietly(path)
    assert S.shape == (step + 1, 78, 2)  # the strike is the last event
    assert S[step, 36].tolist() == [1, 1]
    assert S[:step, 36].sum() == 0


@pytest.mark.parametrize("tpb", [1, 3, 7, 96, 100, 220, 384, 480, 1000, 32767])
def test_snapping_matches_exact_fractions(tmp_path, tpb):
    """The step of every tick against exact rational arithmetic, for ticks near boundaries."""
    q = Fraction(tpb, 4)
    ticks = sorted({max(0, int(q * s + Fraction(1, 2) * q) + d) for s in range(0, 40, 3)
                    for d in (-1, 0, 1)})
    events = [(tick, on(24 + i % 78)) for i, tick in enumerate(ticks)]
    S = read_quietly(save_midi(tmp_path / "f.mid", [events], ticks_per_beat=tpb))
    for i, tick in enumerate(ticks):
        step = int(Fraction(tick) / q + Fraction(1, 2))  # floor of a positive fraction
        assert S[step, i % 78, 1] == 1, (tick, step)


# ----------------------------------------------------------------------------- note rules


def test_sustained_note_copies_play_and_clears_articulate(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (480, off(C4))]])
    S = read_quietly(path)
    assert S.shape == (5, 78, 2)
    np.testing.assert_array_equal(S, expected_roll(5, [(C4, 0, 4)]))
    assert S[:, 36].tolist() == [[1, 1], [1, 0], [1, 0], [1, 0], [0, 0]]


def test_note_on_velocity_zero_is_a_release(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (240, on(C4, velocity=0))]])
    np.testing.assert_array_equal(read_quietly(path), expected_roll(3, [(C4, 0, 2)]))


def test_strike_and_release_in_one_step_is_lost(tmp_path):
    # both at step 2 (ticks 190 and 290 lie in [180, 300)); the release comes last
    path = save_midi(tmp_path / "f.mid", [[(190, on(C4)), (290, off(C4))]])
    S = read_quietly(path)
    assert S.shape == (3, 78, 2)
    assert S.sum() == 0


def test_release_then_strike_in_one_step_is_a_strike(tmp_path):
    # held from step 0; released at tick 470 and struck at 490, both in step 4
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (470, off(C4)), (490, on(C4)),
                                           (720, off(C4))]])
    S = read_quietly(path)
    assert S[:, 36].tolist() == [[1, 1], [1, 0], [1, 0], [1, 0], [1, 1], [1, 0], [0, 0]]


def test_release_then_strike_at_the_same_tick(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (240, off(C4)), (240, on(C4)),
                                           (480, off(C4))]])
    np.testing.assert_array_equal(read_quietly(path),
                                  expected_roll(5, [(C4, 0, 2), (C4, 2, 4)]))


def test_restrike_without_release_articulates(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (240, on(C4, velocity=90)),
                                           (600, off(C4))]])
    S = read_quietly(path)
    assert S[:, 36].tolist() == [[1, 1], [1, 0], [1, 1], [1, 0], [1, 0], [0, 0]]


def test_release_of_a_silent_note_changes_nothing(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, off(C4)), (120, on(62)), (240, off(C4)),
                                           (360, off(62))]])
    np.testing.assert_array_equal(read_quietly(path), expected_roll(4, [(62, 1, 3)]))


def test_chord_notes_are_independent(tmp_path):
    chord = [(0, on(p)) for p in (60, 64, 67)] + [(120, off(64)), (360, off(60)),
                                                   (360, off(67))]
    np.testing.assert_array_equal(read_quietly(save_midi(tmp_path / "f.mid", [chord])),
                                  expected_roll(4, [(60, 0, 3), (64, 0, 1), (67, 0, 3)]))


def test_pitch_range_is_24_to_101(tmp_path):
    events = [(0, on(p)) for p in (0, 23, 24, 101, 102, 127)] + [(240, off(p)) for p in
                                                                  (0, 23, 24, 101, 102, 127)]
    S = read_quietly(save_midi(tmp_path / "f.mid", [events]))
    np.testing.assert_array_equal(S, expected_roll(3, [(24, 0, 2), (101, 0, 2)]))
    assert S[:, 0, 0].tolist() == [1, 1, 0] and S[:, 77, 0].tolist() == [1, 1, 0]


def test_drums_left_out_by_default_and_included_on_request(tmp_path):
    events = [(0, on(C4)), (240, off(C4)),
              (0, on(38, channel=9)), (480, off(38, channel=9))]
    events.sort(key=lambda e: e[0])  # stable: same-tick order kept
    path = save_midi(tmp_path / "f.mid", [events])
    np.testing.assert_array_equal(read_quietly(path), expected_roll(5, [(C4, 0, 2)]))
    np.testing.assert_array_equal(read_quietly(path, include_drums=True),
                                  expected_roll(5, [(C4, 0, 2), (38, 0, 4)]))


def test_left_out_drum_events_still_count_for_the_length(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (120, off(C4))],
                                          [(0, on(42, channel=9)), (960, off(42, channel=9))]])
    S = read_quietly(path)
    assert S.shape == (9, 78, 2)
    np.testing.assert_array_equal(S, expected_roll(9, [(C4, 0, 1)]))


def test_length_counts_the_last_event_of_any_kind(tmp_path):
    # a text meta event at tick 1200 (step 10), then end-of-track at 2390 (step 20)
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (480, off(C4)), (1200, text())]])
    assert read_quietly(path).shape == (11, 78, 2)
    path = save_midi(tmp_path / "g.mid", [[(0, on(C4)), (480, off(C4)), (1200, text())]],
                     end_ticks=[2390])
    S = read_quietly(path)
    assert S.shape == (21, 78, 2)
    np.testing.assert_array_equal(S, expected_roll(21, [(C4, 0, 4)]))


def test_length_counts_the_longest_track(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (480, off(C4))], []],
                     end_ticks=[480, 1560])
    assert read_quietly(path).shape == (14, 78, 2)


def test_held_note_at_the_end_keeps_playing(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4))]], end_ticks=[360])
    np.testing.assert_array_equal(read_quietly(path), expected_roll(4, [(C4, 0, 4)]))


def test_empty_track_gives_one_silent_step(tmp_path):
    S = read_quietly(save_midi(tmp_path / "f.mid", [[]]))
    assert S.shape == (1, 78, 2) and S.dtype == np.uint8 and S.sum() == 0


def test_file_without_tracks_gives_one_silent_step(tmp_path):
    path = save_midi(tmp_path / "f.mid", [])
    S = read_quietly(path)
    assert S.shape == (1, 78, 2) and S.sum() == 0


def test_same_tick_events_keep_track_order(tmp_path):
    # Track 0 strikes at tick 480, track 1 releases at tick 480: the later track wins.
    strike_then_release = save_midi(tmp_path / "a.mid", [[(0, on(C4)), (480, on(C4))],
                                                         [(480, off(C4))]])
    S = read_quietly(strike_then_release)
    assert S[:, 36].tolist() == [[1, 1], [1, 0], [1, 0], [1, 0], [0, 0]]
    release_then_strike = save_midi(tmp_path / "b.mid", [[(480, off(C4))],
                                                         [(0, on(C4)), (480, on(C4))]])
    S = read_quietly(release_then_strike)
    assert S[:, 36].tolist() == [[1, 1], [1, 0], [1, 0], [1, 0], [1, 1]]


def test_events_in_one_step_from_different_ticks_follow_tick_order(tmp_path):
    # Track 0 releases at tick 500, track 1 strikes at tick 470: same step 4, the release
    # (later tick) wins although its track comes first.
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (500, off(C4))], [(470, on(C4))]])
    S = read_quietly(path)
    assert S[:, 36].tolist() == [[1, 1], [1, 0], [1, 0], [1, 0], [0, 0]]


def test_format_0_with_several_channels(tmp_path):
    events = [(0, on(60, channel=0)), (0, on(48, channel=3)), (240, off(60, channel=0)),
              (480, off(48, channel=3))]
    path = save_midi(tmp_path / "f.mid", [events], midi_type=0)
    np.testing.assert_array_equal(read_quietly(path), expected_roll(5, [(60, 0, 2), (48, 0, 4)]))


def test_accepts_str_and_path(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (120, off(C4))]])
    np.testing.assert_array_equal(read_quietly(str(path)), read_quietly(Path(path)))


# ----------------------------------------------------------------------------- time signatures


def test_three_four_at_the_start_gives_one_step(tmp_path):
    # the strike before the signature (same tick, same track) is kept; the one after is not
    path = save_midi(tmp_path / "waltz.mid", [[(0, on(C4)), (0, meter(3, 4)), (0, on(64)),
                                               (480, off(C4)), (480, off(64))]])
    S, messages = read_warned(path)
    assert S.shape == (1, 78, 2)
    assert S[0, 36].tolist() == [1, 1] and S[0, 40].tolist() == [0, 0]
    assert len(messages) == 1
    assert "3/4" in messages[0] and "waltz.mid" in messages[0]


def test_six_eight_mid_piece_ends_there(tmp_path):
    # 6/8 at tick 960 (step 8) in track 0. Kept: everything before it in merge order,
    # including track 0's strike of 62 at tick 900 (also step 8). Lost: track 1's strike at
    # tick 960 (same tick, later track) and everything later.
    path = save_midi(tmp_path / "change.mid", [
        [(0, on(C4)), (480, off(C4)), (900, on(62)), (960, meter(6, 8)), (960, on(64)),
         (1200, off(62)), (1200, off(64)), (1920, on(65))],
        [(0, on(48)), (960, on(50)), (1500, off(48))],
    ])
    S, messages = read_warned(path)
    np.testing.assert_array_equal(S, expected_roll(9, [(C4, 0, 4), (48, 0, 9), (62, 8, 9)]))
    assert len(messages) == 1 and "6/8" in messages[0] and "change.mid" in messages[0]


def test_meter_ending_in_a_later_track_keeps_earlier_tracks_events_at_that_tick(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (240, on(64))],
                                          [(240, meter(5, 4)), (240, on(67))]])
    S, _ = read_warned(path)
    np.testing.assert_array_equal(S, expected_roll(3, [(C4, 0, 3), (64, 2, 3)]))


def test_two_and_four_meters_keep_going(tmp_path):
    events = [(0, meter(4, 4)), (0, on(C4)), (480, meter(2, 4)), (960, meter(2, 2)),
              (1440, meter(4, 8)), (1920, off(C4))]
    np.testing.assert_array_equal(read_quietly(save_midi(tmp_path / "f.mid", [events])),
                                  expected_roll(17, [(C4, 0, 16)]))


def test_only_the_first_meter_ending_counts(tmp_path):
    events = [(0, on(C4)), (240, meter(3, 4)), (480, meter(7, 8))]
    S, messages = read_warned(save_midi(tmp_path / "f.mid", [events]))
    assert S.shape == (3, 78, 2) and len(messages) == 1 and "3/4" in messages[0]


def test_meter_ending_after_max_steps_is_a_cut(tmp_path):
    events = [(0, on(C4)), (2400, meter(3, 4))]  # step 20
    S, messages = read_warned(save_midi(tmp_path / "f.mid", [events]), max_steps=10)
    np.testing.assert_array_equal(S, expected_roll(10, [(C4, 0, 10)]))
    assert len(messages) == 1 and "max_steps=10" in messages[0]


# ----------------------------------------------------------------------------- max_steps


def test_piece_longer_than_max_steps_is_cut_with_a_warning(tmp_path):
    path = save_midi(tmp_path / "long.mid", [[(0, on(C4)), (600, on(64)), (48_000, off(C4)),
                                              (48_000, off(64))]])
    S, messages = read_warned(path, max_steps=50)
    np.testing.assert_array_equal(S, expected_roll(50, [(C4, 0, 50), (64, 5, 50)]))
    assert len(messages) == 1 and "long.mid" in messages[0] and "50" in messages[0]
    np.testing.assert_array_equal(read_quietly(path)[:50], S)  # 401 steps by default


def test_piece_of_exactly_max_steps_is_not_cut(tmp_path):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4)), (1200, off(C4))]])  # T = 11
    assert read_quietly(path, max_steps=11).shape == (11, 78, 2)
    S, _ = read_warned(path, max_steps=10)
    assert S.shape == (10, 78, 2)


def test_note_held_2_pow_28_ticks_is_cut_fast_in_little_memory(tmp_path):
    path = write_long_held_note(tmp_path / "held.mid", hold_ticks=2**28)
    tracemalloc.start()
    try:
        S, messages = read_warned(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert S.shape == (100_000, 78, 2)
    assert S[:, 36, 0].all() and S[0, 36, 1] == 1 and S[1:, 36, 1].sum() == 0
    assert S.sum() == 100_001
    assert len(messages) == 1 and "held.mid" in messages[0]
    assert peak_bytes < 64 * 2**20  # S itself is 15.6 MB


def test_huge_delta_time_is_cut(tmp_path):
    path = write_huge_delta(tmp_path / "huge.mid", n_continuation_bytes=2000)  # 14000 bits
    S, messages = read_warned(path, max_steps=300)
    np.testing.assert_array_equal(S, expected_roll(300, [(C4, 0, 300)]))


@pytest.mark.parametrize("bad", [0, -1, 2**31, 1.5, "10", True, None])
def test_bad_max_steps_is_refused(tmp_path, bad):
    path = save_midi(tmp_path / "f.mid", [[(0, on(C4))]])
    with pytest.raises((TypeError, ValueError)):
        read_state_matrix(path, max_steps=bad)


# ----------------------------------------------------------------------------- a real file


def realistic_song():
    """A type 1 file at tpb 384 (q = 96 ticks, boundaries at 48 + 96 k): a tempo track, two
    piano hands and strings on channels 0-2 with controllers and bends, drums on channel 9.
    Returns (tracks, expected notes (pitch, first step, end step), expected drum notes, T).
    """
    M = mido.Message
    meta = mido.MetaMessage
    tempo_track = [
        (0, meta("track_name", name="Song")), (0, meta("set_tempo", tempo=500000)),
        (0, meta("time_signature", numerator=4, denominator=4)),
        (0, meta("key_signature", key="G")), (1536, meta("set_tempo", tempo=450000)),
        (3072, meta("marker", text="end")),
    ]
    right_hand = [
        (0, meta("track_name", name="Piano RH")), (0, M("program_change", program=0)),
        (0, M("control_change", control=7, value=100)),
        (0, M("control_change", control=64, value=127)),
        (0, on(76, 90)), (190, off(76)),                   # E5 steps 0-1 (190 -> step 2)
        (196, on(79, 80)), (200, M("pitchwheel", pitch=1200)),
        (380, off(79)),                                    # G5 steps 2-3
        (386, on(76, 85)), (400, M("pitchwheel", pitch=0)),
        (760, off(76)),                                    # E5 steps 4-7 (760 -> step 8)
        (770, on(74, 70)), (1150, off(74)),                # D5 steps 8-11
        (1152, on(72, 50)), (1170, off(72)),               # grace note inside step 12: lost
        (1180, on(74, 75)), (1500, M("control_change", control=64, value=0)),
        (1536, off(74)),                                   # D5 steps 12-15
        (1536, M("control_change", control=64, value=127)),
        (1536, on(79, 90)), (1600, M("aftertouch", value=40)),
        (1728, on(79, 70)),                                # re-strike at step 18, no release
        (2304, off(79)),                                   # G5 steps 16-23
        (2304, on(83, 80)), (3072, on(83, 0)),             # B5 steps 24-31 (vel 0 = release)
    ]
    left_hand = [
        (0, M("program_change", channel=1, program=0)),
        (0, on(48, 60, channel=1)), (0, on(43, 60, channel=1)),
        (0, on(21, 60, channel=1)),                        # A0: below the range, ignored
        (768, off(43, channel=1)),                         # G2 steps 0-7
        (1536, off(48, channel=1)), (1536, on(48, 65, channel=1)),  # C3 re-struck at 16
        (1540, on(40, 55, channel=1)), (1630, off(40, channel=1)),  # E2 step 16
        (3060, off(48, channel=1)), (3072, off(21, channel=1)),
    ]
    strings = [
        (0, M("program_change", channel=2, program=48)),
        (0, M("control_change", channel=2, control=1, value=0)),
        (740, on(76, 50, channel=2)),  # E5 at step 8, but the piano's release at 760 wins
        (768, on(96, 50, channel=2)), (768, on(108, 50, channel=2)),  # C8 out of range
        (800, M("control_change", channel=2, control=1, value=64)),
        (1000, off(76, channel=2)),
        (1100, M("pitchwheel", channel=2, pitch=-2000)),
        (2304, off(96, channel=2)), (2304, off(108, channel=2)),  # C7 steps 8-23
    ]
    drums = []
    for beat in range(10):  # kick on even beats, snare on odd beats, hi-hat every eighth
        tick = 384 * beat
        drum = 36 if beat % 2 == 0 else 38
        drums += [(tick, on(drum, 100, channel=9)), (tick, on(42, 60, channel=9)),
                  (tick + 40, off(42, channel=9)),         # hi-hat: struck and released in
                  (tick + 48, off(drum, channel=9)),       # one step, lost; drum: one step
                  (tick + 192, on(42, 60, channel=9)), (tick + 232, off(42, channel=9))]
    drums.sort(key=lambda e: e[0])
    notes = [(76, 0, 2), (79, 2, 4), (76, 4, 8), (74, 8, 12), (74, 12, 16), (79, 16, 18),
             (79, 18, 24), (83, 24, 32),
             (48, 0, 16), (43, 0, 8), (48, 16, 32), (40, 16, 17),
             (96, 8, 24)]
    drum_notes = [(36 if b % 2 == 0 else 38, 4 * b, 4 * b + 1) for b in range(10)]
    # last event: the drums' final hi-hat release at 3456 + 232 = 3688, step 38
    return [tempo_track, right_hand, left_hand, strings, drums], notes, drum_notes, 39


def test_realistic_multitrack_file(tmp_path):
    tracks, notes, drum_notes, n_steps = realistic_song()
    path = save_midi(tmp_path / "song.mid", tracks, ticks_per_beat=384)
    assert len(mido.MidiFile(str(path)).tracks) == 5
    S = read_quietly(path)
    np.testing.assert_array_equal(S, expected_roll(n_steps, notes))
    S_drums = read_quietly(path, include_drums=True)
    np.testing.assert_array_equal(S_drums, expected_roll(n_steps, notes + drum_notes))


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize("tpb", [8, 9, 11, 96, 100, 220, 384, 480, 1000, 32767])
def test_round_trip_of_random_canonical_rolls(tmp_path, tpb):
    rng = np.random.default_rng(tpb)
    for trial in range(6):
        S = random_canonical_roll(rng, int(rng.integers(1, 200)))
        path = tmp_path / f"r{trial}.mid"
        write_state_matrix(S, path, ticks_per_beat=tpb)
        R = read_quietly(path)
        assert R.dtype == np.uint8
        np.testing.assert_array_equal(R, S)


def test_round_trip_of_dense_and_extreme_rolls(tmp_path):
    silent = np.zeros((1, 78, 2), np.uint8)
    everything_struck = np.ones((5, 78, 2), np.uint8)
    everything_struck[-1] = 0
    held = np.zeros((300, 78, 2), np.uint8)
    held[:-1, :, 0] = 1
    held[0, :, 1] = 1
    for S in (silent, everything_struck, held):
        write_state_matrix(S, tmp_path / "x.mid", ticks_per_beat=96)
        np.testing.assert_array_equal(read_quietly(tmp_path / "x.mid"), S)


def test_written_events_follow_the_rules(tmp_path):
    S = np.zeros((4, 78, 2), np.uint8)
    S[0, 36] = [1, 1]
    S[1, 36] = [1, 1]       # re-struck: note_off then note_on at step 1
    S[2, 36] = [0, 0]       # released at step 2
    S[2, 30] = [1, 1]       # struck at step 2: after the step's note_offs
    S[1, 40] = [1, 0]       # onset without articulate: written as a strike
    S[3, 43] = [1, 1]       # still sounding at the end: released at the tick of step T = 4
    path = tmp_path / "w.mid"
    write_state_matrix(S, path, ticks_per_beat=100, tempo_bpm=90, velocity=77)
    midi = mido.MidiFile(str(path))
    assert midi.type == 0 and len(midi.tracks) == 1 and midi.ticks_per_beat == 100
    tempos = [m for m in midi.tracks[0] if m.type == "set_tempo"]
    assert len(tempos) == 1 and tempos[0].time == 0 and tempos[0].tempo == 666667
    velocities = {m.velocity for m in midi.tracks[0] if m.type == "note_on"}
    assert velocities == {77}
    # step t at tick t * 100 // 4 = 25 t
    assert note_events(path) == [
        (0, "note_on", 60),
        (25, "note_off", 60), (25, "note_on", 60), (25, "note_on", 64),
        (50, "note_off", 60), (50, "note_off", 64), (50, "note_on", 54),
        (75, "note_off", 54), (75, "note_on", 67),
        (100, "note_off", 67),
    ]
    end = [m for m in midi.tracks[0] if m.type == "end_of_track"]
    assert len(end) == 1 and sum(m.time for m in midi.tracks[0]) == 100
    R = read_quietly(path)  # one more, silent, step; the onset comes back articulated
    expected = np.zeros((5, 78, 2), np.uint8)
    expected[:4] = S
    expected[1, 40] = [1, 1]
    np.testing.assert_array_equal(R, expected)


def test_end_of_track_sits_at_the_last_step_when_nothing_sounds(tmp_path):
    S = np.zeros((7, 78, 2), np.uint8)
    S[2, 10] = [1, 1]
    write_state_matrix(S, tmp_path / "e.mid", ticks_per_beat=480)
    track = mido.MidiFile(str(tmp_path / "e.mid")).tracks[0]
    assert track[-1].type == "end_of_track" and sum(m.time for m in track) == 6 * 120


def test_write_accepts_bool_and_int_rolls(tmp_path):
    S = random_canonical_roll(np.random.default_rng(5), 20)
    for variant in (S.astype(bool), S.astype(np.int64), S.astype(np.float32)):
        write_state_matrix(variant, tmp_path / "v.mid")
        np.testing.assert_array_equal(read_quietly(tmp_path / "v.mid"), S)


@pytest.mark.parametrize("bad", [
    np.zeros((5, 77, 2)), np.zeros((5, 78)), np.zeros((5, 78, 3)), np.zeros((0, 78, 2)),
    np.full((2, 78, 2), 2), np.full((2, 78, 2), 0.5), np.full((2, 78, 2), np.nan),
    np.full((2, 78, 2), -1), np.full((2, 78, 2), "1"),
])
def test_write_refuses_bad_rolls(tmp_path, bad):
    with pytest.raises(ValueError):
        write_state_matrix(bad, tmp_path / "bad.mid")
    assert not (tmp_path / "bad.mid").exists()


@pytest.mark.parametrize("settings", [
    {"ticks_per_beat": 7}, {"ticks_per_beat": 0}, {"ticks_per_beat": 32768},
    {"ticks_per_beat": 480.0}, {"velocity": 0}, {"velocity": 128}, {"tempo_bpm": 0},
    {"tempo_bpm": -120}, {"tempo_bpm": float("inf")}, {"tempo_bpm": 1}, {"tempo_bpm": "fast"},
])
def test_write_refuses_bad_settings(tmp_path, settings):
    with pytest.raises(ValueError):
        write_state_matrix(np.zeros((3, 78, 2), np.uint8), tmp_path / "bad.mid", **settings)
    assert not (tmp_path / "bad.mid").exists()


# ----------------------------------------------------------------------------- hostile files


@pytest.mark.parametrize("name", sorted(hostile_contents()))
def test_hostile_file_raises_midi_error_naming_it(tmp_path, name):
    path = write_hostile_files(tmp_path)[name]
    with pytest.raises(MidiError) as caught:  # any other exception type fails the test
        read_state_matrix(path)
    assert name in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_missing_file_raises_midi_error_naming_it(tmp_path):
    with pytest.raises(MidiError, match="nothing_here.mid"):
        read_state_matrix(tmp_path / "nothing_here.mid")


def test_folder_raises_midi_error(tmp_path):
    (tmp_path / "folder.mid").mkdir()
    with pytest.raises(MidiError, match="folder.mid"):
        read_state_matrix(tmp_path / "folder.mid")


def test_length_lies_and_mutants_give_midi_error_or_a_roll(tmp_path):
    paths = write_length_lies(tmp_path, seed=1, count=40) + write_mutants(tmp_path, seed=2,
                                                                          count=200)
    refused = 0
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MidiWarning)
                S = read_state_matrix(path, max_steps=5000)
        except MidiError as e:
            assert path.name in str(e)
            refused += 1
        else:
            assert_well_formed(S)
    assert refused > len(paths) // 2  # most of them really are broken


def test_five_thousand_tracks_read(tmp_path):
    path = write_many_tracks(tmp_path / "many.mid", n_tracks=5000)
    S = read_quietly(path)
    # track i strikes note i % 78 at step i and releases it at step i + 1
    assert S.shape == (5001, 78, 2)
    expected = np.zeros((5001, 78, 2), np.uint8)
    steps = np.arange(5000)
    expected[steps, steps % 78] = 1
    np.testing.assert_array_equal(S, expected)


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev are POSIX")
def test_reader_refuses_fifos_devices_folders_and_files_over_the_cap(tmp_path):
    import os
    import time
    from biaxial_cu.midi import MAX_FILE_BYTES
    os.mkfifo(tmp_path / "fifo.mid")
    (tmp_path / "zero.mid").symlink_to("/dev/zero")
    (tmp_path / "dir.mid").mkdir()
    with open(tmp_path / "huge.mid", "wb") as f:
        f.write(b"MThd")
        f.truncate(MAX_FILE_BYTES + 1)
    assert MAX_FILE_BYTES == 64 * 2**20
    started = time.perf_counter()
    for name, why in [("fifo.mid", "not a regular file"), ("zero.mid", "not a regular file"),
                      ("dir.mid", "is a folder"), ("huge.mid", "larger than 64 MB")]:
        with pytest.raises(MidiError, match=why) as e:
            read_state_matrix(tmp_path / name)
        assert name in str(e.value)
    assert time.perf_counter() - started < 5


@pytest.mark.skipif(sys.platform == "win32", reason="newlines in file names are POSIX")
def test_messages_show_a_file_name_that_does_not_print_escaped_on_one_line(tmp_path):
    bad = tmp_path / "a\nb.mid"
    bad.write_bytes(b"not midi")
    with pytest.raises(MidiError) as e:
        read_state_matrix(bad)
    assert "\n" not in str(e.value) and repr(str(bad)) in str(e.value)
    with pytest.raises(MidiError, match="no such file") as e:
        read_state_matrix(tmp_path / "gone\n.mid")
    assert "\n" not in str(e.value)
    good = tmp_path / "plain name.mid"  # a printable name is shown as it is
    good.write_bytes(b"not midi")
    with pytest.raises(MidiError, match=r"^/.*/plain name\.mid: not a standard MIDI file"):
        read_state_matrix(good)
