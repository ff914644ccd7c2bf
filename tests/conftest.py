"""Shared test set-up: GPU tests skip with the reason where no usable GPU is present."""
import functools

import pytest


@functools.lru_cache(maxsize=1)
def gpu_unavailable_reason():
    """None when the cuda backend can run here, else why not."""
    from biaxial_cu.backends.cuda import cuda_unavailable_reason

    return cuda_unavailable_reason()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords:
            reason = gpu_unavailable_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"GPU test: {reason}"))
