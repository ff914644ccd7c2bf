"""Typed errors of biaxial_cu."""


class MidiError(ValueError):
    """A MIDI file that cannot be read; the message names the file and the reason."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: truncated, foreign, or from another configuration."""
