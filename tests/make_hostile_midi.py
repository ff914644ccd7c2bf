"""Generate hostile MIDI files, byte by byte, for the reader's robustness tests.

Usage: python tests/make_hostile_midi.py OUT_DIR   (writes every file below into OUT_DIR)

Three families:
  * write_hostile_files(folder): files that read_state_matrix must refuse with MidiError
    (and only MidiError): not MIDI, cut short, lying chunk lengths, unsupported timing or
    format, malformed events and meta events.
  * write_length_lies(folder, seed) and write_mutants(folder, count, seed): a valid file with
    random track-length lies, or random byte changes; the reader must either refuse them with
    MidiError or return a well-formed roll (mido may parse some into something valid).
  * write_many_tracks(path, n) and write_long_held_note(path, ticks): valid files that are
    extreme (thousands of tracks; one note held for 2**28 ticks): must read fast, in little
    memory.
Everything is built here from the Standard MIDI File layout: a chunk is a 4-byte name, a
32-bit big-endian length, then the payload; MThd holds (format, number of tracks, division).
"""
import struct
import sys
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- building blocks


def chunk(name, payload, declared_length=None):
    """A chunk: name, big-endian 32-bit length (the true one unless declared_length), payload."""
    length = len(payload) if declared_length is None else declared_length
    return name + struct.pack(">L", length) + payload


def header(midi_format=1, n_tracks=1, division=480):
    """The MThd chunk; division is the raw 16-bit field (bit 15 set = SMPTE)."""
    return chunk(b"MThd", struct.pack(">HHH", midi_format, n_tracks, division))


def variable_int(value):
    """MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def event(delta, *data):
    return variable_int(delta) + bytes(data)


END_OF_TRACK = event(0, 0xFF, 0x2F, 0x00)


def melody_payload():
    """A small valid track: C major scale, one beat (480 ticks) per note, then end of track."""
    payload = event(0, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20)  # tempo 500000 us per beat
    for pitch in (60, 62, 64, 65, 67, 69, 71, 72):
        payload += event(0, 0x90, pitch, 80) + event(480, 0x80, pitch, 0)
    return payload + END_OF_TRACK


def valid_midi_bytes():
    """A valid format 1 file: the melody track and a bass track."""
    bass = event(0, 0x91, 36, 70) + event(1920, 0x81, 36, 0) + END_OF_TRACK
    return header(1, 2, 480) + chunk(b"MTrk", melody_payload()) + chunk(b"MTrk", bass)


def one_track(payload, division=480):
    return header(0, 1, division) + chunk(b"MTrk", payload)


# --------------------------------------------------------------------------- files to refuse


def hostile_contents():
    """name -> bytes of every file that read_state_matrix must refuse with MidiError."""
    valid = valid_midi_bytes()
    melody = melody_payload()
    rng = np.random.default_rng(1234)
    random_bytes = rng.integers(0, 256, 600, dtype=np.uint8).tobytes()
    riff_payload = b"RMID" + chunk(b"data", valid)
    riff = b"RIFF" + struct.pack("<L", len(riff_payload)) + riff_payload  # little endian
    # Declared 6 bytes short: the first track ends inside its last note_off, the parser runs
    # over the chunk boundary into the next track's header and the rest of the file.
    cut_short = (header(1, 2, 480) + chunk(b"MTrk", melody, declared_length=len(melody) - 6)
                 + chunk(b"MTrk", event(0, 0x91, 36, 70) + END_OF_TRACK))
    return {
        "empty.mid": b"",
        "header_cut.mid": valid[:9],
        "header_only.mid": header(1, 1, 480),
        "header_length_4.mid": b"MThd" + struct.pack(">L", 4) + struct.pack(">HH", 1, 1),
        "truncated_mid_track.mid": valid[: len(valid) // 2],
        "truncated_mid_chunk_header.mid": valid[: 14 + 5],
        "random_bytes.mid": b"\x00" + random_bytes,  # never starts with MThd
        "text_file.mid": b"This is not a MIDI file.\n" * 20,
        "riff_rmid.mid": riff,
        "ticks_per_beat_zero.mid": one_track(melody, division=0),
        "smpte_25fps.mid": one_track(melody, division=0xE728),  # -25 fps, 40 ticks per frame
        "smpte_30fps.mid": one_track(melody, division=0xE250),  # -30 fps, 80 ticks per frame
        "format2.mid": header(2, 1, 480) + chunk(b"MTrk", melody),
        "format7.mid": header(7, 1, 480) + chunk(b"MTrk", melody),
        "track_length_longer.mid": (header(0, 1, 480)
                                    + chunk(b"MTrk", melody, declared_length=len(melody) + 1000)),
        "track_length_huge.mid": header(0, 1, 480) + chunk(b"MTrk", melody,
                                                           declared_length=0xFFFFFFFF),
        "track_length_shorter.mid": cut_short,
        "more_tracks_declared.mid": header(1, 3, 480) + chunk(b"MTrk", melody),
        "too_many_tracks_declared.mid": header(1, 40000, 480) + chunk(b"MTrk", melody),
        "not_mtrk_chunk.mid": header(0, 1, 480) + chunk(b"XFIH", melody),
        "data_byte_over_127.mid": one_track(event(0, 0x90, 60, 200) + END_OF_TRACK),
        "running_status_first.mid": one_track(event(0, 60, 64) + END_OF_TRACK),
        "undefined_status.mid": one_track(event(0, 0xF4, 1, 2) + END_OF_TRACK),
        "meta_time_signature_short.mid": one_track(event(0, 0xFF, 0x58, 0x01, 0x03)
                                                   + END_OF_TRACK),
        "meta_tempo_short.mid": one_track(event(0, 0xFF, 0x51, 0x01, 0x07) + END_OF_TRACK),
        "meta_key_signature_bad.mid": one_track(event(0, 0xFF, 0x59, 0x02, 20, 0)
                                                + END_OF_TRACK),
        "meta_length_past_end.mid": one_track(event(0, 0xFF, 0x01, 0x7F, 65, 66) + END_OF_TRACK),
        "sysex_length_past_end.mid": one_track(event(0, 0xF0) + variable_int(50_000)
                                               + b"\x01\x02\xF7"),
        "sysex_length_over_mido_limit.mid": one_track(event(0, 0xF0) + variable_int(2_000_000)
                                                      + b"\xF7"),
        "delta_time_cut.mid": one_track(event(0, 0x90, 60, 64) + b"\x81\x82"),
    }


def write_hostile_files(folder):
    """Write every file to refuse into folder; returns {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, content in hostile_contents().items():
        paths[name] = folder / name
        paths[name].write_bytes(content)
    return paths


# --------------------------------------------------------------------------- refuse or read


def write_length_lies(folder, seed=0, count=40):
    """Copies of the valid file whose first track declares a random wrong length."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    melody = melody_payload()
    bass = chunk(b"MTrk", event(0, 0x91, 36, 70) + event(1920, 0x81, 36, 0) + END_OF_TRACK)
    paths = []
    for i in range(count):
        lie = int(rng.integers(0, 2 * len(melody)))
        if lie == len(melody):
            lie += 1
        path = folder / f"length_lie_{i:03d}_{lie}.mid"
        path.write_bytes(header(1, 2, 480) + chunk(b"MTrk", melody, declared_length=lie) + bass)
        paths.append(path)
    return paths


def write_mutants(folder, seed=0, count=200):
    """Copies of the valid file with 1 to 8 random bytes changed, dropped or inserted."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    valid = valid_midi_bytes()
    paths = []
    for i in range(count):
        data = bytearray(valid)
        for _ in range(int(rng.integers(1, 9))):
            where = int(rng.integers(0, len(data)))
            action = int(rng.integers(0, 3))
            if action == 0:
                data[where] = int(rng.integers(0, 256))
            elif action == 1:
                del data[where]
            else:
                data.insert(where, int(rng.integers(0, 256)))
        path = folder / f"mutant_{i:03d}.mid"
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- extreme but valid


def write_many_tracks(path, n_tracks=5000, division=480):
    """A format 1 file of n_tracks tracks; track i strikes pitch 24 + i % 78 at tick 120 * i
    for 60 ticks (so i % 4 == 0 tracks start on a step)."""
    tracks = []
    for i in range(n_tracks):
        pitch = 24 + i % 78
        payload = event(120 * i, 0x90, pitch, 64) + event(60, 0x80, pitch, 0) + END_OF_TRACK
        tracks.append(chunk(b"MTrk", payload))
    Path(path).write_bytes(header(1, n_tracks, division) + b"".join(tracks))
    return Path(path)


def write_long_held_note(path, hold_ticks=2**28, division=480):
    """One track: middle C struck at tick 0 and released hold_ticks later."""
    payload = event(0, 0x90, 60, 64) + event(hold_ticks, 0x80, 60, 0) + END_OF_TRACK
    Path(path).write_bytes(one_track(payload, division))
    return Path(path)


def write_huge_delta(path, n_continuation_bytes=2000):
    """A note whose release comes after a delta time of 7 * n_continuation_bytes bits."""
    huge = b"\xFF" * n_continuation_bytes + b"\x7F"
    payload = event(0, 0x90, 60, 64) + huge + bytes([0x80, 60, 0]) + END_OF_TRACK
    Path(path).write_bytes(one_track(payload))
    return Path(path)


def main(argv):
    if len(argv) != 2:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    folder = Path(argv[1])
    write_hostile_files(folder / "refuse")
    write_length_lies(folder / "refuse_or_read")
    write_mutants(folder / "refuse_or_read")
    (folder / "extreme").mkdir(parents=True, exist_ok=True)
    write_many_tracks(folder / "extreme" / "many_tracks_5000.mid")
    write_long_held_note(folder / "extreme" / "held_2pow28_ticks.mid")
    write_huge_delta(folder / "extreme" / "huge_delta.mid")
    print(f"wrote hostile MIDI files under {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
