"""Shared test set-up: GPU tests skip with the reason where no usable GPU is present."""
import functools

import pytest


@functools.lru_cache(maxsize=1)
def gpu_unavailable_reason():
    """None when CuPy can run kernels on a GPU here, else why not."""
    try:
        import cupy
    except ImportError as e:
        return f"CuPy is not installed ({e}); pip install -e '.[cuda13]'"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        return f"no usable CUDA device ({type(e).__name__}: {e})"
    return None if n > 0 else "no CUDA device found"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords:
            reason = gpu_unavailable_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"GPU test: {reason}"))
