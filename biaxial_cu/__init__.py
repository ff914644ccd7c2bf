"""biaxial_cu: the biaxial RNN for music composition on hand-written CUDA kernels."""
from ._version import __version__
from .errors import CheckpointError, MidiError

__all__ = ["__version__", "MidiError", "CheckpointError", "Model"]


def __getattr__(name):  # Model imports numba-backed code: load it on first use
    if name == "Model":
        from .model import Model

        return Model
    raise AttributeError(f"module 'biaxial_cu' has no attribute {name!r}")
