"""Shared test set-up: GPU tests skip with the reason where no usable GPU is present; tests that
need another optional tool skip without it, except under CI, where they fail (needs).

BIAXIAL_CU_RAW_ALLOC=1 turns CuPy's memory pool off (every array its own cudaMalloc), so that
compute-sanitizer's memcheck sees the bounds of each array, not of the pool's large blocks:
bench/gpu_session.sh sets it for the sanitizer runs.
"""
import functools
import importlib
import os

import numpy as np
import pytest

from biaxial_cu.midi import write_state_matrix


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


def needs(missing):
    """For a test that needs an optional tool: skip with `missing` (why it cannot run) where it
    is not None, except under CI (the CI variable set: .ci/run installs every such tool), where
    the test fails instead, so that no such test is dead code."""
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI installs what this test needs, but: {missing}")
    if missing:
        pytest.skip(missing)


def import_or_needs(module, extra):
    """import module, or needs() why not (the pip extra that brings it)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        needs(f"{module} cannot be imported ({e}); pip install -e '.[{extra}]'")


@pytest.fixture(scope="session")
def music(tmp_path_factory):
    """Four small canonical pieces of 40 steps (quick to load, long enough for --seq-len 16)."""
    folder = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(0)
    for k in range(4):
        S = np.zeros((40, 78, 2), np.uint8)
        for t in range(0, 38, 2):
            notes = rng.choice(78, 3, replace=False)
            S[t:t + 2, notes, 0] = 1
            S[t, notes, 1] = 1
        write_state_matrix(S, folder / f"piece{k}.mid")
    return folder


@pytest.fixture(autouse=True, scope="session")
def corpus_cache_in_a_temporary_folder(tmp_path_factory):
    """Folder loads (and the command lines the tests start) keep their corpus caches in a folder
    of this test session, not in the user's cache folder (XDG_CACHE_HOME, data.py)."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved
