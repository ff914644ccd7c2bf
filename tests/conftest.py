"""Shared test set-up: GPU tests skip with the reason where no usable GPU is present.

BIAXIAL_CU_RAW_ALLOC=1 turns CuPy's memory pool off (every array its own cudaMalloc), so that
compute-sanitizer's memcheck sees the bounds of each array, not of the pool's large blocks:
bench/gpu_session.sh sets it for the sanitizer runs.
"""
import functools
import os

import pytest


@functools.lru_cache(maxsize=1)
def gpu_unavailable_reason():
    """None when the cuda backend can run here, else why not."""
    from biaxial_cu.backends.cuda import cuda_unavailable_reason

    return cuda_unavailable_reason()


def pytest_configure(config):
    if os.environ.get("BIAXIAL_CU_RAW_ALLOC") == "1" and gpu_unavailable_reason() is None:
        import cupy

        cupy.cuda.set_allocator(None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords:
            reason = gpu_unavailable_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"GPU test: {reason}"))
