"""Every kernel compiles with NVRTC as CuPy compiles it, and what the compiled kernels use fits the
GPU at the launch geometry the backends use: what a GPU would check first, checked in CI.

Compiling: nvrtc.compile_source hands NVRTC the option list cupy.RawModule does
(nvrtc.cupy_options), for sm_80 (A100) and sm_90 (H100, H200): kernels.kernel_source(m) with
kernels.module_options(m), byte for byte what the backends give CuPy, also for sm_75; the CPU
harness's samples; every tile variant of lstm.cu.
Resources: registers, local memory and static shared memory of each kernel, read from the cubin
(nvrtc.resource_usage, NVIDIA's cuobjdump; cross-checked against ptxas -v here). No default kernel
uses local memory (spills) at either arch, and every launch as the backends make it fits an SM by
the CUDA occupancy calculator's rules (cuda_occupancy.h). The LSTM step kernels are checked at the
original configuration's step shapes, the time stack (R = 10 x 78 = 780 rows, H = 300) and the
pitch stack (R = 10 x 127 = 1270 rows, H = 100 and 50), and at batch 64 x 1280 steps; a
time-stack step gives every SM of a 132-SM GPU (H100 SXM, H200) a block, all in one wave.
NVRTC (pip wheel nvidia-cuda-nvrtc) and cuobjdump (nvidia-cuda-cuobjdump) come with the [test]
extra: without them these tests skip, except under CI (the CI variable set), where that fails.
"""
import functools
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from biaxial_cu import nvrtc
from biaxial_cu.backends.cuda.generator import MAX_PITCH_H
from biaxial_cu.backends.cuda.kernels import (ELEMENTWISE_THREADS, FEATURE_THREADS, KERNELS_DIR, LOSS_THREADS,
                                              LSTM_BACKWARD_TF32_TILES, LSTM_BACKWARD_TILES, LSTM_FORWARD_TF32_TILES,
                                              LSTM_FORWARD_TILES, MODULES, kernel_source, lstm_backward_launch,
                                              lstm_forward_launch, module_options)

SAMPLES = KERNELS_DIR.parent / "tests" / "cuda_emu" / "samples" / "samples.cu"
ARCHS = ["sm_80", "sm_90"]


def _need(tool):
    try:
        tool()
    except nvrtc.NvrtcError as e:
        if os.environ.get("CI"):
            raise  # CI installs the [test] extra: a missing tool is a failure there
        pytest.skip(str(e))


@pytest.fixture(scope="module", autouse=True)
def need_nvrtc():
    _need(nvrtc.library)


@pytest.fixture(scope="module")
def need_cuobjdump():
    _need(nvrtc.cuobjdump)


@functools.lru_cache(maxsize=None)
def cubin(module, arch, defines=()):
    """kernels/<module>.cu compiled as the backends have CuPy compile it (defines: -D options)."""
    return nvrtc.compile_source(kernel_source(module), arch, f"{module}.cu", module_options(module, defines))


@functools.lru_cache(maxsize=None)
def usage(module, arch, defines=()):
    return nvrtc.resource_usage(cubin(module, arch, defines))


def tile_defines(tiles):
    return tuple(f"{k}={v}" for k, v in tiles.items())


# ------------------------------------------------------------------ compiling

def test_cupy_options_are_cupys_order():
    """CuPy 14 adds -ftz=true before the arch and --device-as-default-execution-space after it,
    and --std=c++17 only when the options name no standard (see nvrtc.CUPY_OPTIONS)."""
    assert nvrtc.cupy_options(module_options("sample"), "sm_90") == (
        "-std=c++17", "--fmad=false", "-ftz=true", "-arch=sm_90", "--device-as-default-execution-space")
    assert nvrtc.cupy_options((), "sm_80") == (
        "--std=c++17", "-ftz=true", "-arch=sm_80", "--device-as-default-execution-space")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", MODULES)
def test_module_compiles_as_cupy_compiles_it(module, arch):
    assert cubin(module, arch)[:4] == b"\x7fELF"


def test_every_kernel_file_is_a_module():
    assert sorted(p.stem for p in KERNELS_DIR.glob("*.cu")) == sorted(MODULES)


@pytest.mark.parametrize("arch", ARCHS)
def test_harness_samples_compile(arch):
    """The CPU harness's own sample kernels are CUDA too (a file, its #include found through -I)."""
    assert nvrtc.compile_file(SAMPLES, arch)[:4] == b"\x7fELF"


@pytest.mark.parametrize("module", MODULES)
def test_module_compiles_for_turing(module):
    """sm_75 (T4, RTX 20xx) has no TF32 tensor cores: lstm.cu's *_tf32 kernels compile to a trap
    there (common.cuh) so that the module, and with it the fp32 path, still builds."""
    assert cubin(module, "sm_75")[:4] == b"\x7fELF"


def test_compile_error_carries_the_log():
    with pytest.raises(nvrtc.NvrtcError, match="undefined"):
        nvrtc.compile_source('extern "C" __global__ void k(float* x) { x[0] = undefined_name; }',
                             "sm_90", "broken.cu")


def test_ptx_for_compute_arch():
    ptx = nvrtc.compile_source('extern "C" __global__ void k(float* x) { x[0] = 1.0f; }', "compute_90")
    assert b".visible .entry k" in ptx


LSTM_TILE_VARIANTS = (LSTM_FORWARD_TILES[1:] + LSTM_BACKWARD_TILES[1:] + LSTM_FORWARD_TF32_TILES[1:]
                      + LSTM_BACKWARD_TF32_TILES[1:])


@pytest.fixture(scope="module")
def variants_compiled_two_at_a_time():
    """Compile every variant before their tests, two at once (NVRTC runs outside the GIL); a
    variant that fails is compiled again, and fails, in its own test."""
    def compile_quietly(tiles):
        try:
            cubin("lstm", "sm_90", tile_defines(tiles))
        except nvrtc.NvrtcError:
            pass

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(compile_quietly, LSTM_TILE_VARIANTS))


@pytest.mark.parametrize("tiles", LSTM_TILE_VARIANTS, ids=str)
def test_lstm_tile_variants_compile(tiles, variants_compiled_two_at_a_time):
    """The non-default tiles (bench/lstm_tiles.py times them): each passes lstm.cu's
    static_asserts and compiles. (Some spill at sm_80; only the defaults must not.)"""
    assert cubin("lstm", "sm_90", tile_defines(tiles))[:4] == b"\x7fELF"


def test_lstm_static_asserts_refuse_a_bad_tile():
    with pytest.raises(nvrtc.NvrtcError, match="forward tile"):
        cubin("lstm", "sm_90", ("FWD_RPT=3",))


# ------------------------------------------------------------------ resources read from the cubin

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", MODULES)
def test_no_kernel_uses_local_memory(module, arch, need_cuobjdump):
    """No spills, no stack frame: every kernel's state stays in registers and shared memory."""
    got = usage(module, arch)
    assert got and {k: u["local_bytes"] for k, u in got.items() if u["local_bytes"]} == {}


def ptxas_usage(log):
    """{kernel: (registers, stack frame bytes, spill store bytes, smem bytes)} from ptxas -v's log."""
    out = {}
    for name, body in re.findall(r"Compiling entry function '(\w+)'.*?\n(.*?)Compile time", log, re.S):
        frame, spills = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores", body).groups()
        regs = re.search(r"Used (\d+) registers", body).group(1)
        smem = re.search(r"(\d+) bytes smem", body)
        out[name] = (int(regs), int(frame), int(spills), int(smem.group(1)) if smem else 0)
    return out


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", MODULES)
def test_resource_usage_agrees_with_ptxas(module, arch, need_cuobjdump):
    """The cubin reader against ptxas's own report of the same compile (--ptxas-options=-v changes
    only the log): registers and stack frame equal; the cubin's shared memory is ptxas's smem, plus
    on sm_90 the 1 KB window the hardware keeps in a block that uses shared memory."""
    options = nvrtc.cupy_options(module_options(module) + ("--ptxas-options=-v",), arch)
    binary, log = nvrtc.compile_program(kernel_source(module), options, f"{module}.cu")
    reported, got = ptxas_usage(log), nvrtc.resource_usage(binary)
    assert set(reported) == set(got)
    for name, (regs, frame, spills, smem) in reported.items():
        reserved = 1024 if arch == "sm_90" and smem else 0
        assert (got[name]["registers"], got[name]["local_bytes"], got[name]["shared_bytes"]) == (
            regs, frame, smem + reserved), name
        assert spills <= frame


# ------------------------------------------------------------------ launch geometry against the SM

# sm_80 as on the A100 (108 SMs), sm_90 as on the H100 SXM and H200 (132 SMs): CUDA C++ Programming
# Guide, "Technical Specifications per Compute Capability". Both: 65536 registers an SM and a block,
# at most 255 a thread, 1024 threads a block, 64 warps and 32 blocks an SM, 48 KB of static shared
# memory a block, 1 KB of shared memory reserved per block.
SM = {"sm_80": {"sms": 108, "shared_per_sm": 164 * 1024, "shared_per_block": 163 * 1024},
      "sm_90": {"sms": 132, "shared_per_sm": 228 * 1024, "shared_per_block": 227 * 1024}}
STATIC_SHARED_PER_BLOCK = 48 * 1024


def blocks_per_sm(use, threads, arch):
    """Blocks of `threads` threads an SM holds at once (0: the launch fails), by
    cudaOccMaxActiveBlocksPerMultiprocessor's rules (cuda_occupancy.h): registers go to warps in
    units of 256 from 4 sub-partitions of 16384 each (the hardware checks the block's warps rounded
    up to 4), shared memory in units of 128 bytes with 1 KB reserved per block. The cubin's shared
    bytes already hold that 1 KB on sm_90, so there it counts twice: on the safe side."""
    warps = -(-threads // 32)
    per_warp = -(-use["registers"] * 32 // 256) * 256
    if (threads > 1024 or use["registers"] > 255 or per_warp * warps > 65536
            or per_warp * -(-warps // 4) * 4 > 65536 or use["shared_bytes"] > STATIC_SHARED_PER_BLOCK):
        return 0
    by_registers = 16384 // per_warp * 4 // warps
    shared = -(-(use["shared_bytes"] + 1024) // 128) * 128
    by_shared = SM[arch]["shared_per_sm"] // shared if shared <= SM[arch]["shared_per_block"] else 0
    return min(by_registers, 64 // warps, 32, by_shared)


def threads_of(block):
    return block[0] * (block[1] if len(block) > 1 else 1)


def check_launch(use, grid, block, arch):
    threads = threads_of(block)
    assert threads <= 1024 and threads % 32 == 0, block
    assert threads * use["registers"] <= 65536, (threads, use["registers"])
    assert use["shared_bytes"] <= STATIC_SHARED_PER_BLOCK
    assert grid[0] < 2**31 and all(g <= 65535 for g in grid[1:]), grid
    assert blocks_per_sm(use, threads, arch) >= 1, (use, block)


TIME_STACK, PITCH_STACK = [(780, 300)], [(1270, 100), (1270, 50)]  # (R, H) at batch 10 x 128 steps
BATCH_64 = [(64 * 78, 300), (64 * 1279, 100), (64 * 1279, 50)]  # batch 64 x 1280 steps
STEP_KERNELS = [("lstm_step_forward", lstm_forward_launch, False), ("lstm_step_backward", lstm_backward_launch, False),
                ("lstm_step_forward_tf32", lstm_forward_launch, True),
                ("lstm_step_backward_tf32", lstm_backward_launch, True)]


@pytest.mark.parametrize("R,H", TIME_STACK + PITCH_STACK + BATCH_64)
@pytest.mark.parametrize("name,launch,tf32", STEP_KERNELS, ids=[k[0] for k in STEP_KERNELS])
@pytest.mark.parametrize("arch", ARCHS)
def test_lstm_step_launch_fits(arch, name, launch, tf32, R, H, need_cuobjdump):
    grid, block = launch(R, H, tf32=tf32)
    check_launch(usage("lstm", arch)[name], grid, block, arch)


@pytest.mark.parametrize("name,launch,tf32", STEP_KERNELS, ids=[k[0] for k in STEP_KERNELS])
def test_time_stack_step_fills_a_132_sm_gpu_in_one_wave(name, launch, tf32, need_cuobjdump):
    """At least one block per SM (no SM idles through a step), and no more than the SMs hold at
    once (a second wave would pay the step's chunk latencies twice: lstm.cu's header)."""
    (gx, gy), block = launch(*TIME_STACK[0], tf32=tf32)
    sms = SM["sm_90"]["sms"]
    assert sms <= gx * gy <= sms * blocks_per_sm(usage("lstm", "sm_90")[name], threads_of(block), "sm_90")


def sweep_threads(H):
    """pitch_sweep's block for pitch layers of at most H units (generator.DeviceGenerator)."""
    return 32 * -(-4 * H // 32)


# every other kernel: (module, threads a block) as backends/cuda/backend.py and generator.py launch
# them; their grids are blocks(n, threads) in x (well under 2^31 at batch 64 x 1280 steps)
OTHER_LAUNCHES = {"adadelta_update": ("adadelta", ELEMENTWISE_THREADS), "segment_sq_norms": ("adadelta", 256),
                  "dropout_mask_hash": ("dropout", ELEMENTWISE_THREADS),
                  "note_inputs": ("features", FEATURE_THREADS), "note_inputs_at": ("features", FEATURE_THREADS),
                  "pitch_inputs": ("layout", ELEMENTWISE_THREADS), "pitch_targets": ("layout", ELEMENTWISE_THREADS),
                  "pitch_to_time": ("layout", ELEMENTWISE_THREADS),
                  "output_loss_forward": ("output_loss", LOSS_THREADS),
                  "output_loss_backward": ("output_loss", ELEMENTWISE_THREADS),
                  "pitch_sweep": ("sample", sweep_threads(MAX_PITCH_H))}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(OTHER_LAUNCHES))
def test_other_launch_fits(arch, name, need_cuobjdump):
    module, threads = OTHER_LAUNCHES[name]
    check_launch(usage(module, arch)[name], (1,), (threads,), arch)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("H", [50, 100, 150, MAX_PITCH_H])
def test_pitch_sweep_fits_up_to_the_widest_pitch_layer(arch, H, need_cuobjdump):
    """Its block grows with the widest pitch layer: 4 x MAX_PITCH_H = 1024 threads at most."""
    check_launch(usage("sample", arch)["pitch_sweep"], (10,), (sweep_threads(H),), arch)


def test_every_kernel_is_checked_here(need_cuobjdump):
    found = {name for module in MODULES for name in usage(module, "sm_90")}
    assert found == set(OTHER_LAUNCHES) | {k[0] for k in STEP_KERNELS}


def test_block_sizes_match_the_kernels_defines():
    """Kernels whose shared arrays are sized for their block: the host launches that block."""
    def define(module, name):
        return int(re.search(rf"#define {name} (\d+)", (KERNELS_DIR / f"{module}.cu").read_text()).group(1))

    assert define("output_loss", "LOSS_THREADS") == OTHER_LAUNCHES["output_loss_forward"][1]
    assert define("adadelta", "NORM_THREADS") == OTHER_LAUNCHES["segment_sq_norms"][1]
    assert define("sample", "MAX_PITCH_H") == MAX_PITCH_H
