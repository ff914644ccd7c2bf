"""Compile CUDA C with NVRTC through ctypes: no GPU and no CuPy needed.

Used by the tests to compile every kernel for sm_80 and sm_90 in CI (the pip wheel
`nvidia-cuda-nvrtc` ships libnvrtc). The options are the ones CuPy adds when a RawModule
compiles (`-ftz=true`, `--device-as-default-execution-space`, `-arch=sm_XX`) plus ours
(`-std=c++17`, the kernels/ folder as include path), so what compiles here compiles under
CuPy on the GPU.
"""
import ctypes
import glob
import os
import site
import sys
from pathlib import Path

KERNELS_DIR = Path(__file__).resolve().parents[1] / "kernels"
CUPY_OPTIONS = ("-ftz=true", "--device-as-default-execution-space")  # what cupy.RawModule adds itself
BASE_OPTIONS = ("-std=c++17",) + CUPY_OPTIONS


class NvrtcError(RuntimeError):
    """NVRTC is missing or a compile failed; the message carries the compile log."""


def kernel_options(include_dir=KERNELS_DIR):
    """The options every backend compiles kernels/ with (arch not included)."""
    return BASE_OPTIONS + (f"-I{include_dir}",)


def _find_library():
    roots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
    for root in roots:
        hits = sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib", "libnvrtc.so*")))
        hits += sorted(glob.glob(os.path.join(root, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
        if hits:
            return hits[-1]
    return None


_lib = None


def library():
    """The loaded libnvrtc (ctypes.CDLL); NvrtcError naming the wheel when absent."""
    global _lib
    if _lib is None:
        path = _find_library()
        if path is None:
            raise NvrtcError("libnvrtc not found: pip install 'nvidia-cuda-nvrtc==13.*'")
        _lib = ctypes.CDLL(path)
    return _lib


def _check(status, what):
    if status != 0:
        lib = library()
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise NvrtcError(f"{what}: {lib.nvrtcGetErrorString(status).decode()}")


def compile_source(source, arch="sm_90", name="kernel.cu", options=None):
    """Compile CUDA C source; returns the cubin (arch sm_XX) or PTX (compute_XX) bytes."""
    lib = library()
    options = kernel_options() if options is None else tuple(options)
    prog = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        opts = [o.encode() for o in options + (f"-arch={arch}",)]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        if status != 0:
            raise NvrtcError(f"{name} does not compile for {arch}:\n{log.value.decode(errors='replace')}")
        kind = "CUBIN" if arch.startswith("sm_") else "PTX"
        _check(getattr(lib, f"nvrtcGet{kind}Size")(prog, ctypes.byref(size)), f"nvrtcGet{kind}Size")
        out = ctypes.create_string_buffer(size.value)
        _check(getattr(lib, f"nvrtcGet{kind}")(prog, out), f"nvrtcGet{kind}")
        return out.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def compile_file(path, arch="sm_90"):
    path = Path(path)
    return compile_source(path.read_text(), arch, path.name, kernel_options(path.parent))
