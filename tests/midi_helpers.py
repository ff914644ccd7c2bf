"""Small helpers to build MIDI files with mido for the tests, and to read them back.

A track is given as a list of (absolute tick, mido message) in file order; the helpers turn
absolute ticks into delta times (ticks must not decrease within a track).
"""
import warnings

import mido
import numpy as np
import pytest

from biaxial_cu.midi import MidiWarning, read_state_matrix


def on(pitch, velocity=64, channel=0):
    return mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def off(pitch, channel=0, velocity=0):
    return mido.Message("note_off", note=pitch, velocity=velocity, channel=channel)


def meter(numerator, denominator=4):
    return mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)


def text(value="marker"):
    return mido.MetaMessage("text", text=value)


def to_track(timed_messages, end_tick=None):
    """A mido track from (absolute tick, message) pairs; end_of_track at end_tick or last."""
    track = mido.MidiTrack()
    now = 0
    for tick, message in timed_messages:
        if tick < now:
            raise ValueError(f"ticks must not decrease within a track: {tick} after {now}")
        track.append(message.copy(time=tick - now))
        now = tick
    end_tick = now if end_tick is None else end_tick
    track.append(mido.MetaMessage("end_of_track", time=end_tick - now))
    return track


def save_midi(path, tracks, *, ticks_per_beat=480, midi_type=1, end_ticks=None):
    """Write tracks (each a list of (absolute tick, message)) as a MIDI file; returns path."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ticks_per_beat)
    for i, timed_messages in enumerate(tracks):
        end_tick = None if end_ticks is None else end_ticks[i]
        midi.tracks.append(to_track(timed_messages, end_tick))
    midi.save(str(path))
    return path


def note_events(path):
    """[(absolute tick, type, pitch)] of the note messages of a file's merged track."""
    midi = mido.MidiFile(str(path))
    events = []
    now = 0
    for message in mido.merge_tracks(midi.tracks):
        now += message.time
        if message.type in ("note_on", "note_off"):
            events.append((now, message.type, message.note))
    return events


def read_quietly(path, **kwargs):
    """read_state_matrix failing the test on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_state_matrix(path, **kwargs)


def read_warned(path, **kwargs):
    """(what read_state_matrix returns, [warning messages]) of a read that must warn with
    MidiWarning."""
    with pytest.warns(MidiWarning) as record:
        result = read_state_matrix(path, **kwargs)
    return result, [str(w.message) for w in record if issubclass(w.category, MidiWarning)]


def expected_roll(n_steps, segments):
    """S from (pitch, first step, end step) segments, each struck at its first step."""
    S = np.zeros((n_steps, 78, 2), np.uint8)
    for pitch, first, end in segments:
        S[first:end, pitch - 24, 0] = 1
        S[first, pitch - 24, 1] = 1
    return S


def random_canonical_roll(rng, n_steps):
    """A random canonical S: articulate implies play, onsets articulated, last step silent."""
    play = rng.random((n_steps, 78)) < rng.uniform(0.05, 0.5)  # (T, 78)
    play[-1] = False
    strike = play & (rng.random((n_steps, 78)) < 0.4)  # (T, 78)
    before = np.vstack([np.zeros((1, 78), bool), play[:-1]])
    strike |= play & ~before
    return np.stack([play, strike], axis=-1).astype(np.uint8)  # (T, 78, 2)
