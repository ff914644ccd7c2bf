"""Every kernel compiles with NVRTC for sm_80 and sm_90, with the options CuPy uses."""
from pathlib import Path

import pytest

from biaxial_cu import nvrtc

ROOT = Path(__file__).resolve().parents[1]
KERNEL_FILES = sorted((ROOT / "kernels").glob("*.cu"))
SAMPLES = ROOT / "tests" / "cuda_emu" / "samples" / "samples.cu"
ARCHS = ["sm_80", "sm_90"]


@pytest.fixture(scope="module", autouse=True)
def need_nvrtc():
    try:
        nvrtc.library()
    except nvrtc.NvrtcError as e:
        if __import__("os").environ.get("CI"):
            raise  # CI installs the wheel: its absence is a failure there
        pytest.skip(str(e))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", KERNEL_FILES + [SAMPLES], ids=lambda p: p.name)
def test_kernel_compiles(path, arch):
    cubin = nvrtc.compile_file(path, arch)
    assert cubin[:4] == b"\x7fELF"


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: p.name)
def test_kernel_compiles_for_turing(path):
    """sm_75 (T4, RTX 20xx) has no TF32 tensor cores: lstm.cu's *_tf32 kernels compile to a trap
    there (common.cuh) so that the module, and with it the fp32 path, still builds."""
    assert nvrtc.compile_file(path, "sm_75")[:4] == b"\x7fELF"


def test_compile_error_carries_the_log():
    with pytest.raises(nvrtc.NvrtcError, match="undefined"):
        nvrtc.compile_source('extern "C" __global__ void k(float* x) { x[0] = undefined_name; }',
                             "sm_90", "broken.cu")


def test_ptx_for_compute_arch():
    ptx = nvrtc.compile_source('extern "C" __global__ void k(float* x) { x[0] = 1.0f; }', "compute_90")
    assert b".visible .entry k" in ptx


def lstm_tile_variants():
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from lstm_tiles import BACKWARD, BACKWARD_TF32, FORWARD, FORWARD_TF32

    return FORWARD[1:] + BACKWARD[1:] + FORWARD_TF32[1:] + BACKWARD_TF32[1:]


@pytest.mark.parametrize("tiles", lstm_tile_variants(), ids=str)
def test_lstm_tile_variants_compile(tiles):
    """bench/lstm_tiles.py's variants: each passes lstm.cu's static_asserts and compiles."""
    options = nvrtc.kernel_options(ROOT / "kernels") + tuple(f"-D{k}={v}" for k, v in tiles.items())
    cubin = nvrtc.compile_source((ROOT / "kernels" / "lstm.cu").read_text(), "sm_90", "lstm.cu", options)
    assert cubin[:4] == b"\x7fELF"


def test_lstm_static_asserts_refuse_a_bad_tile():
    options = nvrtc.kernel_options(ROOT / "kernels") + ("-DFWD_RPT=3",)
    with pytest.raises(nvrtc.NvrtcError, match="forward tile"):
        nvrtc.compile_source((ROOT / "kernels" / "lstm.cu").read_text(), "sm_90", "lstm.cu", options)
