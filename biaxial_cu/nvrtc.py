"""Compile CUDA C with NVRTC through ctypes, and read what the compiled kernels use: no GPU and no
CuPy needed.

The tests compile every kernel for sm_80 and sm_90 in CI (the pip wheel `nvidia-cuda-nvrtc` ships
libnvrtc) with the option list CuPy's RawModule hands NVRTC (`cupy_options`), so what compiles here
compiles under CuPy on the GPU, into the same binary. `resource_usage` reads each kernel's
registers, local memory and static shared memory from that binary with NVIDIA's cuobjdump (the pip
wheel `nvidia-cuda-cuobjdump`).
"""
import ctypes
import glob
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

KERNELS_DIR = Path(__file__).resolve().parents[1] / "kernels"
BASE_OPTIONS = ("-std=c++17",)  # ours, given to cupy.RawModule with each module's own (kernels.module_options)

# What CuPy 14 (v14.0.0 to v14.2.0, read from its source) adds for cupy.RawModule(code=source,
# options=ours) on the default backend (NVRTC, no jitify, CuPy's environment variables unset), in
# the order NVRTC receives them:
#   1. -I<cupy/_core/include>/cupy/_cccl/{cub,thrust,libcudacxx} before ours; after ours --std=c++17
#      unless ours name a -std (BASE_OPTIONS does), then -I<cupy/_core/include> and -I<the CUDA
#      headers>: cupy/_core/core.pyx, assemble_cupy_compiler_options, called by compile_with_cache,
#      which cupy/_core/raw.pyx's _get_raw_module calls (prepend_cupy_headers=False: the source
#      goes to NVRTC as given);
#   2. -ftz=true: cupy/cuda/compiler.py, _compile_with_cache_cuda (which adds --device-debug
#      --generate-line-info only under CUPY_CUDA_COMPILE_WITH_DEBUG=1);
#   3. -arch=sm_XX, XX the device's compute capability capped at NVRTC's newest (121 for NVRTC 13),
#      so a cubin: cupy/cuda/compiler.py, _get_arch_for_options_for_nvrtc (-arch=compute_XX, PTX,
#      only under CUPY_COMPILE_WITH_PTX=1 or above the cap), added by _compile_using_nvrtc_no_warning;
#   4. --device-as-default-execution-space: _compile_using_nvrtc_no_warning (v14.2 adds --pch there
#      only under CUPY_NVRTC_USE_PCH=1).
# Nothing else: no -D, no -use_fast_math, no -maxrregcount. The -I folders only resolve #include
# lines, and kernels.kernel_source() leaves none, so they cannot change the binary: cupy_options()
# is everything else, in CuPy's order.
CUPY_OPTIONS = ("-ftz=true", "--device-as-default-execution-space")  # the two CuPy puts around -arch


class NvrtcError(RuntimeError):
    """NVRTC (or cuobjdump) is missing or a compile failed; the message carries the compile log."""


def cupy_options(options, arch):
    """The options cupy.RawModule(code=..., options=options) hands NVRTC on a GPU of `arch`
    ("sm_90"), in CuPy's order, less its -I folders (see CUPY_OPTIONS)."""
    options = tuple(options)
    std = () if any("-std=" in o for o in options) else ("--std=c++17",)
    ftz, default_device = CUPY_OPTIONS
    return options + std + (ftz, f"-arch={arch}", default_device)


def kernel_options(include_dir=KERNELS_DIR):
    """Our options for a kernels/ file compiled as a file, its #include found through -I (the
    backends inline common.cuh instead: kernels.kernel_source); CuPy's and the arch not included."""
    return BASE_OPTIONS + (f"-I{include_dir}",)


def _find_in_wheels(*pattern):
    """The newest file matching site-packages/nvidia/<pattern> (NVIDIA's pip wheels), or None."""
    roots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
    for root in roots:
        hits = sorted(glob.glob(os.path.join(root, "nvidia", *pattern)))
        if hits:
            return hits[-1]
    return None


_lib = None


def library():
    """The loaded libnvrtc (ctypes.CDLL); NvrtcError naming the wheel when absent."""
    global _lib
    if _lib is None:
        path = _find_in_wheels("*", "lib", "libnvrtc.so*")
        if path is None:
            raise NvrtcError("libnvrtc not found: pip install 'nvidia-cuda-nvrtc==13.*'")
        _lib = ctypes.CDLL(path)
    return _lib


def _check(status, what):
    if status != 0:
        lib = library()
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise NvrtcError(f"{what}: {lib.nvrtcGetErrorString(status).decode()}")


def compile_program(source, options, name="kernel.cu"):
    """Compile CUDA C with exactly `options` (with -arch=sm_XX: a cubin; -arch=compute_XX: PTX);
    returns (binary, NVRTC's log), the log also on success (ptxas's with --ptxas-options=-v)."""
    lib = library()
    options = tuple(options)
    arch = next((o.split("=", 1)[1] for o in options if o.startswith("-arch=")), "")
    prog = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        opts = [o.encode() for o in options]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        log = log.value.decode(errors="replace")
        if status != 0:
            raise NvrtcError(f"{name} does not compile for {arch or 'the default arch'}:\n{log}")
        kind = "CUBIN" if arch.startswith("sm_") else "PTX"
        _check(getattr(lib, f"nvrtcGet{kind}Size")(prog, ctypes.byref(size)), f"nvrtcGet{kind}Size")
        out = ctypes.create_string_buffer(size.value)
        _check(getattr(lib, f"nvrtcGet{kind}")(prog, out), f"nvrtcGet{kind}")
        return out.raw, log
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def compile_source(source, arch="sm_90", name="kernel.cu", options=None):
    """Compile CUDA C as cupy.RawModule(code=source, options=options) does on a GPU of `arch`:
    returns the cubin (sm_XX) or PTX (compute_XX) bytes. options: ours (default kernel_options())."""
    options = kernel_options() if options is None else options
    return compile_program(source, cupy_options(options, arch), name)[0]


def compile_file(path, arch="sm_90"):
    path = Path(path)
    return compile_source(path.read_text(), arch, path.name, kernel_options(path.parent))


def cuobjdump():
    """Path of NVIDIA's cuobjdump: the pip wheel's, else one on PATH; NvrtcError naming the wheel."""
    path = _find_in_wheels("*", "bin", "cuobjdump") or shutil.which("cuobjdump")
    if path is None:
        raise NvrtcError("cuobjdump not found: pip install 'nvidia-cuda-cuobjdump==13.*'")
    return path


def resource_usage(cubin):
    """{kernel: {"registers", "local_bytes", "shared_bytes"}} of every kernel in a cubin, as
    `cuobjdump --dump-resource-usage` reads them from it: registers per thread; local memory per
    thread (its stack frame, where spills go, plus any other local memory); the block's static
    shared memory as the cubin reserves it. That last one is ptxas -v's "smem" on sm_80; on sm_90
    the cubin also counts the 1 KB window the hardware keeps in every block that uses shared memory
    (ptxas's number + 1024 for those kernels; the driver reserves that 1 KB per block on both)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "module.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        done = subprocess.run([cuobjdump(), "--dump-resource-usage", path], capture_output=True, text=True)
    if done.returncode != 0:
        raise NvrtcError(f"cuobjdump --dump-resource-usage failed:\n{done.stdout}{done.stderr}")
    usage = {}
    for name, fields in re.findall(r"^\s*Function ([^\s:]+):\s*\n\s*(.+)$", done.stdout, re.M):
        f = {k: int(v) for k, v in re.findall(r"(\w+(?:\[\d+\])?):(\d+)", fields)}
        usage[name] = {"registers": f["REG"], "local_bytes": f["STACK"] + f["LOCAL"], "shared_bytes": f["SHARED"]}
    if not usage:
        raise NvrtcError(f"no kernel in cuobjdump's output:\n{done.stdout}")
    return usage
