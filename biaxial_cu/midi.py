"""MIDI file <-> state matrix S (MODEL_SPEC.md section 1).

S has shape (T, 78, 2), uint8: S[t, n, 0] = note n (MIDI pitch n + 24) sounds during step t
("play"), S[t, n, 1] = note n is (re)struck at step t ("articulate"). One step is a sixteenth
note, q = ticks_per_beat / 4 ticks (a real number).

Reading (MIDI -> S), in four passes:
  1. bytes: the whole file is read into memory (a regular file of at most MAX_FILE_BYTES,
     64 MB; a FIFO, a device or a bigger file is refused); we check the 14-byte header
     ourselves (MThd, format 0/1, ticks per beat > 0, no SMPTE timing, at most MAX_TRACKS
     tracks) so that each refusal has a clear reason, then mido parses the tracks from an
     in-memory buffer. Every
     failure of the parse (mido raises OSError, EOFError, ValueError, KeyError, IndexError,
     struct.error, its own KeySignatureError, ...) becomes one MidiError naming the file.
  2. events: one Python pass over the messages of each track turns delta times into absolute
     ticks and keeps only what matters: note events in range (value 1 = strike, 0 = release),
     meter endings (a time signature whose numerator is not 2 or 4; meters="original" only)
     and every time signature (for bar positions). Ticks are clamped at a cap beyond
     max_steps, so a huge delta time cannot overflow int64 or grow an array.
  3. merge: a stable sort by tick of the events, laid out track after track, is the stable
     merge of mido.merge_tracks (same tick: track order, then order within the track).
     Step of tick k: floor(k/q + 1/2) = floor((8k + tpb) / (2 tpb)), exact in integers.
     The piece ends at the first meter ending (its step kept, holding the events before it),
     else after the step of the last event of any kind; it is cut at max_steps.
  4. roll: per (step, note) the last event wins; articulate = last event is a strike; play is
     the last event's value carried forward in time, built as a cumulative sum over steps of
     the per-note changes (int8, (T, 78)), so memory is O(T * 78) bytes plus O(events).

Writing (S -> MIDI): one track (format 0), a tempo event, step t at tick t * tpb // 4; per step
note_offs (released or re-struck notes) then note_ons (re-struck notes and onsets); every note
still sounding is released at the tick of step T. Canonical S (articulate implies play, onsets
articulated, last step silent) reads back exactly for tpb >= 8.

Meters (MODEL_SPEC section 8), the `meters` option of read_state_matrix (METER_MODES):
  "original" (default): the rule above, byte for byte: a time signature whose numerator is not
     2 or 4 ends the piece.
  "all": no time signature ends the piece.
  Bar positions (return_bar_positions=True, either mode): pos (T,) int32, pos[t] = steps since
  the bar line at or before step t. Before any time signature the meter is 4/4 (bars of
  BAR_STEPS_4_4 = 16 steps) from step 0. A time signature N/D at step s (its tick rounded to a
  step as a note's is) starts a bar at s, whether or not s was on a bar line, and bars of
  L = bar_steps(N, D) = max(1, floor(16 N / D + 1/2)) steps follow until the next signature
  (round half up: 3/32 is 1.5 steps -> 2; 6/8 -> 12, 9/8 -> 18, 5/4 -> 20, 7/8 -> 14).
  Several signatures at one step (same tick or not): the last in merge order wins. In
  "original" mode pos follows only the signatures before the one that ends the piece.
  Hostile signatures are read, never refused: MIDI stores the numerator in one byte (0..255,
  so L <= 255 * 16 = 4080 for D = 1) and the denominator as a power-of-two exponent (0..255,
  mido gives D = 2**e >= 1, never 0); numerator 0 or a denominator far beyond the numerator
  gives L = 1 by the at-least-one rule. L never sizes an array. A time signature of fewer
  than 4 data bytes is a MidiError, as any malformed meta event.
  The beat inputs (features.py) see pos[t] in place of the original's step index and take its
  low four bits, so a bar longer than 16 steps (5/4, 9/8, 12/8) repeats the 16-step beat
  pattern inside the bar, cut short at the next bar line.
  Writing: write_state_matrix(..., meter=...) writes time signatures so that reading the file
  back with meters="all" gives the same S and pos (parse_meter: N in 1..255, D a power of two
  in 1..MAX_METER_DENOMINATOR).
"""
import heapq
import io
import os
import stat
import struct
import warnings

import mido
import numpy as np

from .common import BAR_STEPS_4_4, LOWEST_PITCH, METER_MODES, N_NOTES, shown_path
from .errors import MidiError

HIGHEST_PITCH = LOWEST_PITCH + N_NOTES - 1  # 101
DRUM_CHANNEL = 9  # channel 10 in 1-based numbering
READ_METERS = (2, 4)  # time-signature numerators that keep a piece going
RELEASE, STRIKE, METER_END = 0, 1, 2  # event values in the reader's (tick, value, note) rows
MAX_TRACKS = 32767  # mido reads the track count as a signed 16-bit number; more is refused
MAX_STEPS_LIMIT = 2**31 - 1  # largest max_steps accepted (keeps tick arithmetic in int64)
MIN_WRITE_TICKS_PER_BEAT = 8  # smallest ticks_per_beat written (exact round trip from 8 on)
MAX_WRITE_TICKS_PER_BEAT = 32767  # the header's division field is 15 bits
DEFAULT_MAX_STEPS = 100_000  # read_state_matrix's default cut (and a composition's longest)
MAX_FILE_BYTES = 64 * 2**20  # larger files are refused (MidiError) before being read whole
MAX_METER_NUMERATOR = 255  # a time signature's numerator is one byte
MAX_METER_DENOMINATOR = 64  # parse_meter's finest beat (a step is a sixteenth; 1/64 is 1 step)


class MidiWarning(UserWarning):
    """A MIDI file was read only in part (cut at max_steps, ended by a meter) or skipped."""


# ----------------------------------------------------------------------------- reading


def read_state_matrix(path, *, include_drums=False, max_steps=DEFAULT_MAX_STEPS,
                      meters="original", return_bar_positions=False):
    """Read a MIDI file into a state matrix S of shape (T, 78, 2), uint8.

    meters: "original" (a time signature whose numerator is not 2 or 4 ends the piece) or
    "all" (no signature ends it); see the module's Meters section. return_bar_positions: also
    return pos (T,) int32, the steps since the bar line at or before each step: (S, pos).
    Raises MidiError (naming the file and the reason) for any file it cannot read.
    Warns with MidiWarning when the piece is ended by a meter other than 2/x or 4/x (only with
    meters="original"), or cut to max_steps steps.
    """
    max_steps = _check_max_steps(max_steps)
    ends_at_meters = _check_meters(meters) == "original"
    name = shown_path(path)  # in messages: one line whatever the file is called
    data = _read_file_bytes(os.fspath(path), name)
    ticks_per_beat = _check_header(data, name)
    tracks = _parse_tracks(data, name)

    tick_cap = (max_steps + 1) * ticks_per_beat  # step(tick_cap) = 4 * max_steps + 4 > max_steps
    events, signatures, last_tick = _collect_events(tracks, include_drums, tick_cap,
                                                    ends_at_meters)
    events = events[np.argsort(events[:, 0], kind="stable")]  # (E, 3) (tick, value, note)
    steps = _tick_to_step(events[:, 0], ticks_per_beat)  # (E,)

    n_steps = _step_of_tick(last_tick, ticks_per_beat) + 1
    ending_signature = None  # index into signatures of the one that ends the piece
    ending = np.flatnonzero(events[:, 1] == METER_END)
    if ending.size and steps[ending[0]] < max_steps:
        first = int(ending[0])
        ending_signature = int(events[first, 2])
        _, numerator, denominator = signatures[ending_signature]
        n_steps = int(steps[first]) + 1
        events, steps = events[:first], steps[:first]
        warnings.warn(
            f"{name}: time signature {numerator}/{_format_denominator(denominator)} at step "
            f"{n_steps - 1} ends the piece there (only meters with numerator 2 or 4 are read); "
            f"kept {n_steps} steps",
            MidiWarning,
            stacklevel=2,
        )
    elif n_steps > max_steps:
        warnings.warn(
            f"{name}: piece is longer than max_steps={max_steps} steps; cut to {max_steps}",
            MidiWarning,
            stacklevel=2,
        )
        n_steps = max_steps

    notes_kept = (events[:, 1] != METER_END) & (steps < n_steps)  # (E,)
    S = _build_roll(steps[notes_kept], events[notes_kept, 2], events[notes_kept, 1], n_steps)
    if not return_bar_positions:
        return S
    changes = _meter_changes(signatures, ending_signature, ticks_per_beat, name)
    return S, bar_positions(changes, n_steps)


def _check_meters(meters):
    if not isinstance(meters, str) or meters not in METER_MODES:
        raise ValueError(f"meters must be one of {METER_MODES}, got {meters!r}")
    return meters


def _check_max_steps(max_steps):
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
        raise TypeError(f"max_steps must be an int, got {type(max_steps).__name__}")
    if not 1 <= max_steps <= MAX_STEPS_LIMIT:
        raise ValueError(f"max_steps must be in 1..{MAX_STEPS_LIMIT}, got {max_steps}")
    return int(max_steps)


def _read_file_bytes(path, name):
    """The file's bytes: a regular file (after following links) of at most MAX_FILE_BYTES, or
    MidiError. Opened without blocking and checked with fstat, so a FIFO, a device (a link to
    /dev/zero or /dev/urandom) or a folder named x.mid is refused at once, never read forever."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise MidiError(f"{name}: no such file") from None
    except (OSError, ValueError) as e:  # no permission, an odd path ...
        raise MidiError(f"{name}: cannot read the file ({type(e).__name__}: {e})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise MidiError(f"{name}: is a folder, not a MIDI file")
        if not stat.S_ISREG(info.st_mode):
            raise MidiError(f"{name}: not a regular file (a FIFO, socket or device); not read")
        data = b""
        if info.st_size <= MAX_FILE_BYTES:  # read what fstat says, one more to see growth
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read(info.st_size + 1)
        if info.st_size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
            raise MidiError(f"{name}: larger than {MAX_FILE_BYTES // 2**20} MB (MAX_FILE_BYTES); "
                            "not read (MIDI files are rarely over 1 MB)")
    except OSError as e:
        raise MidiError(f"{name}: cannot read the file ({type(e).__name__}: {e})") from None
    finally:
        os.close(fd)
    return data


def _check_header(data, name):
    """Check the MThd chunk ourselves (mido checks little of it); return ticks per beat."""
    if len(data) == 0:
        raise MidiError(f"{name}: empty file, not a MIDI file")
    if data[:4] == b"RIFF":
        raise MidiError(f"{name}: RIFF-wrapped MIDI (RMID) is not supported; "
                        "extract the standard MIDI file inside it")
    if data[:4] != b"MThd":
        raise MidiError(f"{name}: not a standard MIDI file (no MThd header)")
    if len(data) < 14:
        raise MidiError(f"{name}: truncated MIDI header ({len(data)} bytes)")
    header_length, midi_format, n_tracks, division = struct.unpack(">LHHH", data[4:14])
    if header_length < 6:
        raise MidiError(f"{name}: MIDI header too short ({header_length} bytes, need 6)")
    if midi_format == 2:
        raise MidiError(f"{name}: format 2 MIDI file (independent sequences, no common "
                        "timeline) is not supported")
    if midi_format > 2:
        raise MidiError(f"{name}: unknown MIDI file format {midi_format}")
    if n_tracks > MAX_TRACKS:
        raise MidiError(f"{name}: {n_tracks} tracks, more than the {MAX_TRACKS} supported")
    if division & 0x8000:
        raise MidiError(f"{name}: SMPTE time division is not supported "
                        "(need ticks per beat)")
    if division == 0:
        raise MidiError(f"{name}: ticks per beat is 0")
    return division


def _parse_tracks(data, name):
    try:
        midi = mido.MidiFile(file=io.BytesIO(data), clip=False)
        return midi.tracks
    except Exception as e:  # mido reports bad content with many exception types
        reason = str(e) or "unexpected end of data"
        raise MidiError(f"{name}: corrupt MIDI data ({type(e).__name__}: {reason})") from e


def _collect_events(tracks, include_drums, tick_cap, ends_at_meters):
    """One pass over every track's messages.

    Returns events (E, 3) int64 rows (tick, value, note) in track order (value STRIKE or
    RELEASE; or METER_END when ends_at_meters, its note column then indexing signatures), every
    time signature as (tick, numerator, denominator) in track order, and the largest tick of
    any event; every tick is clamped to tick_cap.
    """
    rows = []  # (tick, value, note)
    signatures = []  # (tick, numerator, denominator)
    last_tick = 0
    for track in tracks:
        now = 0
        for msg in track:
            now += msg.time
            kind = msg.type
            if kind == "note_on" or kind == "note_off":
                if msg.channel == DRUM_CHANNEL and not include_drums:
                    continue
                pitch = msg.note
                if LOWEST_PITCH <= pitch <= HIGHEST_PITCH:
                    value = STRIKE if kind == "note_on" and msg.velocity > 0 else RELEASE
                    rows.append((min(now, tick_cap), value, pitch - LOWEST_PITCH))
            elif kind == "time_signature":
                if ends_at_meters and msg.numerator not in READ_METERS:
                    rows.append((min(now, tick_cap), METER_END, len(signatures)))
                signatures.append((min(now, tick_cap), msg.numerator, msg.denominator))
        last_tick = max(last_tick, min(now, tick_cap))
    events = np.array(rows, dtype=np.int64).reshape(-1, 3)  # (E, 3)
    return events, signatures, last_tick


def _meter_changes(signatures, ending_signature, ticks_per_beat, name):
    """[(step, bar length)] of the time signatures in merge order (a stable sort by tick of the
    track-order list), stopping before ending_signature when it is not None."""
    merged = sorted(range(len(signatures)), key=lambda i: signatures[i][0])
    if ending_signature is not None:
        merged = merged[:merged.index(ending_signature)]
    changes = []
    for i in merged:
        tick, numerator, denominator = signatures[i]
        try:
            length = bar_steps(numerator, denominator)
        except (TypeError, ValueError) as e:  # mido gives 0..255 and 2**e, so only a new mido
            raise MidiError(f"{name}: time signature {numerator}/{denominator} at tick {tick} "
                            f"has no bar length ({e})") from None
        changes.append((_step_of_tick(tick, ticks_per_beat), length))
    return changes


def _tick_to_step(ticks, ticks_per_beat):
    """floor(k / q + 1/2) with q = tpb / 4, exact in integers: (8k + tpb) // (2 tpb)."""
    return (8 * ticks + ticks_per_beat) // (2 * ticks_per_beat)


def _step_of_tick(tick, ticks_per_beat):
    return int(_tick_to_step(int(tick), int(ticks_per_beat)))


def _format_denominator(denominator):
    return str(denominator) if denominator < 10**6 else f"2**{denominator.bit_length() - 1}"


def _build_roll(steps, notes, values, n_steps):
    """S (T, 78, 2) uint8 from note events in merged order: last wins, play carried forward."""
    keys = steps * N_NOTES + notes  # (E,) one key per (step, note)
    # Last event per key: np.unique on the reversed keys gives each key's last occurrence.
    unique_keys, index_from_end = np.unique(keys[::-1], return_index=True)  # sorted by key
    last_values = values[::-1][index_from_end]  # (K,)
    key_steps, key_notes = np.divmod(unique_keys, N_NOTES)  # (K,), (K,)

    # Group by note, in time order within each note, to find each note's previous value.
    by_note = np.lexsort((key_steps, key_notes))  # (K,)
    key_steps, key_notes, last_values = key_steps[by_note], key_notes[by_note], last_values[by_note]
    previous = np.zeros_like(last_values)  # (K,) value before this event; 0 at a note's start
    same_note = key_notes[1:] == key_notes[:-1]
    previous[1:][same_note] = last_values[:-1][same_note]

    change = np.zeros((n_steps, N_NOTES), dtype=np.int8)  # (T, 78) play[t] - play[t-1]
    change[key_steps, key_notes] = last_values - previous
    S = np.zeros((n_steps, N_NOTES, 2), dtype=np.uint8)  # (T, 78, 2)
    S[:, :, 0] = np.cumsum(change, axis=0, dtype=np.int8)
    S[key_steps, key_notes, 1] = last_values == STRIKE
    return S


# ----------------------------------------------------------------------------- meters


def parse_meter(meter):
    """(numerator, denominator) of a meter given as "3/4" or (3, 4); ValueError otherwise.

    The numerator must be in 1..255 (one byte in a MIDI file) and the denominator a power of two
    in 1..MAX_METER_DENOMINATOR (a MIDI file stores its exponent), so every parsed meter can be
    written by write_state_matrix.
    """
    if isinstance(meter, str):
        parts = meter.split("/")
        if len(parts) != 2 or not all(part.strip().isdecimal() for part in parts):
            raise ValueError(f"a meter is written N/D with whole numbers, like 3/4 or 6/8; "
                             f"got {meter!r}")
        numerator, denominator = (int(part) for part in parts)
    elif isinstance(meter, (tuple, list)) and len(meter) == 2 and all(
            isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_))
            for part in meter):
        numerator, denominator = (int(part) for part in meter)
    else:
        raise ValueError(f"a meter is a string like '3/4' or a pair of ints like (3, 4); "
                         f"got {meter!r}")
    if not 1 <= numerator <= MAX_METER_NUMERATOR:
        raise ValueError(f"a meter's numerator must be in 1..{MAX_METER_NUMERATOR}, "
                         f"got {numerator} in {meter!r}")
    if not 1 <= denominator <= MAX_METER_DENOMINATOR or denominator & (denominator - 1):
        raise ValueError(f"a meter's denominator must be a power of two from 1 to "
                         f"{MAX_METER_DENOMINATOR}, got {denominator} in {meter!r}")
    return numerator, denominator


def bar_steps(numerator, denominator):
    """Steps (sixteenths) in a bar of numerator/denominator: 16 N / D rounded half up, at least
    1 (3/32 is 1.5 steps -> 2; 1/64 is 0.25 -> 1). Exact in integers for any size (a hostile
    file's denominator can be 2**255). numerator: int >= 0, denominator: int >= 1."""
    for what, value, low in (("numerator", numerator, 0), ("denominator", denominator, 1)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"a meter's {what} must be an int, got {value!r}")
        if value < low:
            raise ValueError(f"a meter's {what} must be >= {low}, got {value}")
    numerator, denominator = int(numerator), int(denominator)
    return max(1, (32 * numerator + denominator) // (2 * denominator))


def bar_positions(meter_changes, n_steps):
    """pos (n_steps,) int32: steps since the bar line at or before each step.

    meter_changes: [(step, bar length)] in order of step (not decreasing); the meter before
    them is 4/4 (BAR_STEPS_4_4 steps) from step 0. A change at step s starts a bar at s; of
    several at one step the last wins; changes at or after n_steps do nothing.
    """
    changes = np.array([(0, BAR_STEPS_4_4)] + list(meter_changes), dtype=np.int64)
    changes = changes.reshape(-1, 2)  # (C, 2) (step, bar length)
    starts, lengths = changes[:, 0], changes[:, 1]  # (C,), (C,)
    if np.any(starts < 0) or np.any(np.diff(starts) < 0):
        raise ValueError("meter_changes must be (step, bar length) pairs with steps >= 0, "
                         "in order of step")
    if np.any(lengths < 1):
        raise ValueError("meter_changes' bar lengths must be >= 1")
    t = np.arange(n_steps, dtype=np.int64)  # (T,)
    latest = np.searchsorted(starts, t, side="right") - 1  # (T,) last change at or before t
    return ((t - starts[latest]) % lengths[latest]).astype(np.int32)


def meter_changes_of(pos):
    """[(step, bar length)] that bar_positions turns back into pos (T,), one change per bar line
    that does not follow from the bar before it (a piece in one meter gives one): what the
    corpus cache keeps instead of pos."""
    pos = np.asarray(pos, dtype=np.int64)  # (T,)
    if pos.ndim != 1 or (pos.size and pos[0] != 0) or np.any(pos[1:] != np.where(pos[1:] == 0, 0, pos[:-1] + 1)):
        raise ValueError("pos must count steps since bar lines: 0 at step 0, then +1 or 0 at each step")
    lines = np.flatnonzero(pos == 0).tolist()  # bar-line steps
    ends = lines[1:] + [pos.size]  # where each bar ends: the next line, or the piece's end
    changes, length, previous = [], None, None
    for k, (step, end) in enumerate(zip(lines, ends)):
        last = k == len(lines) - 1
        same_bar = end - step == length or (last and length is not None and end - step <= length)
        if previous is not None and step == previous + length and same_bar:
            previous = step  # where the bars before put it, as long as they (or cut at the end)
            continue
        length = max(end - step, length) if last and length is not None else end - step
        changes.append((step, length))
        previous = step
    return changes


# ----------------------------------------------------------------------------- writing


def write_state_matrix(S, path, *, ticks_per_beat=480, tempo_bpm=120, velocity=64, meter=None):
    """Write a state matrix S (T, 78, 2) of 0/1 values as a one-track MIDI file.

    meter: None (no time signature: 4/4 to a reader); a meter, "3/4" or (3, 4) (parse_meter),
    written at step 0; or a list of meter changes [(step, meter)], steps in 0..T-1 and in order,
    each written at its step. Reading the file back with meters="all" gives the same S and
    pos = bar_positions([(step, bar_steps(*meter)), ...], T). (With meters="original" a
    numerator other than 2 or 4 ends the piece, as in any file.)
    Raises ValueError for a malformed S, meter or out-of-range settings (nothing is written then).
    """
    S = _check_state_matrix(S)  # (T, 78, 2) bool
    ticks_per_beat = _check_int("ticks_per_beat", ticks_per_beat,
                                MIN_WRITE_TICKS_PER_BEAT, MAX_WRITE_TICKS_PER_BEAT)
    velocity = _check_int("velocity", velocity, 1, 127)
    tempo = _tempo_from_bpm(tempo_bpm)
    meter_changes = _check_meter_changes(meter, S.shape[0])

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    last_tick = 0
    for tick, is_on, what in _file_events(S, ticks_per_beat, meter_changes):
        if is_on is None:  # a time signature; what = (numerator, denominator)
            track.append(mido.MetaMessage("time_signature", numerator=what[0],
                                          denominator=what[1], time=tick - last_tick))
        else:  # a note; what = note index
            kind = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind, note=what + LOWEST_PITCH,
                                      velocity=velocity if is_on else 0, time=tick - last_tick))
        last_tick = tick
    end_tick = max(last_tick, _step_tick(S.shape[0] - 1, ticks_per_beat))
    track.append(mido.MetaMessage("end_of_track", time=end_tick - last_tick))

    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    midi.save(os.fspath(path))


def _check_meter_changes(meter, n_steps):
    """[(step, (numerator, denominator))] of write_state_matrix's meter argument."""
    if meter is None:
        return []
    if _is_one_meter(meter):
        return [(0, parse_meter(meter))]
    if not isinstance(meter, (tuple, list)):
        raise ValueError(f"meter must be None, a meter like '3/4' or (3, 4), or a list of "
                         f"(step, meter) changes; got {meter!r}")
    changes = []
    for change in meter:
        if not isinstance(change, (tuple, list)) or len(change) != 2:
            raise ValueError(f"a meter change is a pair (step, meter), got {change!r}")
        step = _check_int("a meter change's step", change[0], 0, n_steps - 1)
        if changes and step < changes[-1][0]:
            raise ValueError(f"meter changes must be in order of step: {step} after "
                             f"{changes[-1][0]}")
        changes.append((step, parse_meter(change[1])))
    return changes


def _is_one_meter(meter):
    """True for "3/4" or a pair of ints (3, 4); False for a list of changes (or anything else)."""
    return isinstance(meter, str) or (
        isinstance(meter, (tuple, list)) and len(meter) == 2
        and all(isinstance(part, (int, np.integer)) for part in meter))


def _check_state_matrix(S):
    S = np.asarray(S)
    if S.ndim != 3 or S.shape[1:] != (N_NOTES, 2) or S.shape[0] < 1:
        raise ValueError(f"S must have shape (T, {N_NOTES}, 2) with T >= 1, got {S.shape}")
    if S.dtype.kind not in "biuf":
        raise ValueError(f"S must hold numbers 0 and 1, got dtype {S.dtype}")
    if not np.all((S == 0) | (S == 1)):
        raise ValueError("S must hold only the values 0 and 1")
    return S.astype(bool)


def _check_int(what, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be in {low}..{high}, got {value}")
    return int(value)


def _tempo_from_bpm(tempo_bpm):
    """Microseconds per beat for a tempo in beats per minute (must fit MIDI's 24 bits)."""
    if isinstance(tempo_bpm, bool) or not isinstance(tempo_bpm, (int, float, np.integer,
                                                                 np.floating)):
        raise ValueError(f"tempo_bpm must be a number, got {tempo_bpm!r}")
    if not np.isfinite(tempo_bpm) or tempo_bpm <= 0:
        raise ValueError(f"tempo_bpm must be a positive number, got {tempo_bpm}")
    tempo = round(60_000_000 / float(tempo_bpm))
    if not 1 <= tempo <= 0xFFFFFF:
        raise ValueError(f"tempo_bpm={tempo_bpm} is outside what MIDI can store "
                         "(about 3.6 to 60000000 bpm)")
    return tempo


def _step_tick(step, ticks_per_beat):
    """Tick of step t when writing: t * tpb // 4 (exact round trip for tpb >= 8)."""
    return step * ticks_per_beat // 4


def _file_events(S, ticks_per_beat, meter_changes):
    """(tick, is_on, note) of the notes (_note_events) merged with (tick, None, (N, D)) of the
    time signatures; a signature comes before the notes of its tick."""
    notes = _note_events(S, ticks_per_beat)
    if not meter_changes:
        return notes
    signatures = [(_step_tick(step, ticks_per_beat), None, numerator_denominator)
                  for step, numerator_denominator in meter_changes]
    return heapq.merge(signatures, notes, key=lambda event: event[0])  # ties: signatures first


def _note_events(S, ticks_per_beat):
    """(tick, is_on, note) for every note event, in file order.

    S: (T, 78, 2) bool. At each step, first the note_offs (notes released, and notes re-struck
    while sounding), then the note_ons (re-struck notes and onsets), each in note order; at step
    T every note still sounding is released.
    """
    play = np.concatenate([S[:, :, 0], np.zeros((1, N_NOTES), bool)])  # (T+1, 78) silent at T
    strike = np.concatenate([S[:, :, 1], np.zeros((1, N_NOTES), bool)])  # (T+1, 78)
    before = np.concatenate([np.zeros((1, N_NOTES), bool), play[:-1]])  # (T+1, 78)
    offs = before & (~play | strike)  # (T+1, 78)
    ons = play & (~before | strike)  # (T+1, 78)
    off_steps, off_notes = np.nonzero(offs)  # row-major: by step, then note
    on_steps, on_notes = np.nonzero(ons)
    steps = np.concatenate([off_steps, on_steps])  # (E,)
    is_on = np.concatenate([np.zeros(off_steps.size, bool), np.ones(on_steps.size, bool)])
    notes = np.concatenate([off_notes, on_notes])
    order = np.lexsort((notes, is_on, steps))  # by step, offs first, then note
    ticks = _step_tick(steps[order], ticks_per_beat)  # (E,)
    return zip(ticks.tolist(), is_on[order].tolist(), notes[order].tolist())
