"""Run CUDA C kernels on the CPU: compile a .cu file with g++ against cuda_emu.h, launch from Python.

    mod = load("kernels/lstm.cu")
    mod.launch("lstm_step_forward", grid=(4, 1, 1), block=(128, 1, 1), args=[x, h, 7, 0.5])

Pointer arguments are numpy arrays (dtype checked against the kernel's parameter type); the
kernel's writes come back into them, as with device memory. Each launch runs in a fresh
runner process built with AddressSanitizer and UBSan, each pointer in its own exact-size heap
buffer, so an out-of-bounds access fails the launch. By default every launch runs under two
fiber schedules (lane order and reverse) on copies of the inputs and fails when the results
differ: that is how a missing __syncthreads shows. Errors raise EmuError with the report.
"""
import hashlib
import os
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BUILD = HERE / "_build"
CXX = os.environ.get("CXX", "g++")
CXXFLAGS = ["-std=c++17", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
            "-fno-sanitize-recover=undefined", "-w"]
ENV = {"ASAN_OPTIONS": "detect_leaks=0:detect_stack_use_after_return=0:abort_on_error=0",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}

POINTER_TYPES = {
    "float": np.float32, "double": np.float64, "int": np.int32, "int32_t": np.int32,
    "unsigned": np.uint32, "unsigned int": np.uint32, "uint32_t": np.uint32,
    "unsigned char": np.uint8, "uint8_t": np.uint8, "char": np.int8, "signed char": np.int8,
    "int8_t": np.int8, "long long": np.int64, "int64_t": np.int64, "unsigned long long": np.uint64,
    "uint64_t": np.uint64, "size_t": np.uint64, "short": np.int16, "unsigned short": np.uint16,
}
SCALAR_FORMATS = {
    "float": "<f", "double": "<d", "int": "<i", "int32_t": "<i", "unsigned": "<I",
    "unsigned int": "<I", "uint32_t": "<I", "long long": "<q", "int64_t": "<q",
    "unsigned long long": "<Q", "uint64_t": "<Q", "size_t": "<Q", "bool": "<?",
}


class EmuError(RuntimeError):
    """A launch failed: sanitizer report, divergent barrier, race between schedules, bad args."""


@dataclass
class Param:
    base: str      # "float", "unsigned char", ...
    pointer: bool
    name: str
    const: bool = False  # a const pointer is not copied back (so aliased arguments work)


def parse_kernels(source):
    """{name: [Param]} of every `extern "C" __global__` kernel in the source."""
    kernels = {}
    pattern = re.compile(r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+'
                         r'(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)', re.S)
    for m in pattern.finditer(source):
        params = []
        for raw in filter(None, (p.strip() for p in m.group(2).split(","))):
            const = bool(re.match(r"\s*const\b", raw))
            raw = re.sub(r"\b(const|__restrict__|__restrict|volatile)\b", " ", raw)
            pointer = "*" in raw
            words = raw.replace("*", " ").split()
            params.append(Param(" ".join(words[:-1]), pointer, words[-1], const and pointer))
        kernels[m.group(1)] = params
    return kernels


# `__align__(N)` (N <= 16) is accepted and dropped: the arena places every array at 16 bytes.
SHARED_DECL = re.compile(r"(?<!extern )__shared__\s+(?:__align__\s*\(\s*(?:4|8|16)\s*\)\s*)?"
                         r"([\w\s:]+?)\s+(\w+)\s*((?:\[[^\]]+\])*)\s*;")
EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?([\w\s:]+?)\s+(\w+)\s*\[\s*\]\s*;")


def rewrite_shared(source):
    """`__shared__ T x[N][M];` -> a reference into the block's poisoned shared arena."""
    def static(m):
        t, name, dims = m.group(1).strip(), m.group(2), m.group(3)
        return (f"{t} (&{name}){dims} = *reinterpret_cast<{t} (*){dims}>"
                f"(__emu_shared(sizeof({t}{dims})));")

    def dynamic(m):
        t, name = m.group(1).strip(), m.group(2)
        return f"{t}* {name} = reinterpret_cast<{t}*>(__emu_dyn_shared());"

    return SHARED_DECL.sub(static, EXTERN_SHARED.sub(dynamic, source))


def launcher_source(kernels):
    lines = []
    for name, params in kernels.items():
        call = ", ".join(f"*({p.base}{'*' if p.pointer else ''}*)args[{i}]" for i, p in enumerate(params))
        lines.append(f"static void __emu_entry_{name}(void** args) {{ {name}({call}); }}")
    table = ", ".join(f'{{"{n}", __emu_entry_{n}}}' for n in kernels)
    lines.append("typedef void (*EmuEntry)(void** args);")
    lines.append("struct EmuKernel { const char* name; EmuEntry entry; };")
    lines.append(f"extern const EmuKernel __emu_kernels[] = {{ {table} }};")
    lines.append(f"extern const int __emu_n_kernels = {len(kernels)};")
    return "\n".join(lines) + "\n"


def load_kernels(name, defines=None):
    """kernels/<name>.cu of this repository, with -D<k>=<v> for each item of defines (a dict)."""
    return load(HERE.parents[1] / "kernels" / f"{name}.cu", [f"{k}={v}" for k, v in (defines or {}).items()])


def load(cu_path, defines=()):
    """Compile (cached) and return a Module for the kernels of one .cu file."""
    cu_path = Path(cu_path).resolve()
    source = cu_path.read_text()
    kernels = parse_kernels(source)
    if not kernels:
        raise EmuError(f'{cu_path}: no extern "C" __global__ kernel found')
    includes = [cu_path.parent]
    tu = '#include "cuda_emu.h"\n' + rewrite_shared(source) + "\n" + launcher_source(kernels)
    deps = "".join(p.read_text() for p in sorted(cu_path.parent.glob("*.cuh")))
    deps += (HERE / "cuda_emu.h").read_text() + (HERE / "emu_runtime.cpp").read_text()
    flags = CXXFLAGS + [f"-D{d}" for d in defines]
    key = hashlib.sha256((tu + deps + " ".join(flags)).encode()).hexdigest()[:16]
    BUILD.mkdir(exist_ok=True)
    exe = BUILD / f"{cu_path.stem}-{key}"
    if not exe.exists():
        src = BUILD / f"{cu_path.stem}-{key}.cpp"
        src.write_text(tu)
        cmd = [CXX, *flags, f"-I{HERE}", *[f"-I{d}" for d in includes], str(src),
               str(HERE / "emu_runtime.cpp"), "-o", str(exe) + ".tmp"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise EmuError(f"g++ could not compile {cu_path.name}:\n{r.stderr[-4000:]}")
        os.replace(str(exe) + ".tmp", exe)
    return Module(exe, kernels)


class Module:
    def __init__(self, exe, kernels):
        self.exe, self.kernels = exe, kernels

    def launch(self, name, grid, block, args, shared_bytes=0, schedules=(0, 1)):
        """Run kernel `name`; pointer args (numpy arrays) receive the kernel's writes."""
        if name not in self.kernels:
            raise EmuError(f"no kernel {name!r}; have {sorted(self.kernels)}")
        params = self.kernels[name]
        if len(args) != len(params):
            raise TypeError(f"{name} takes {len(params)} arguments, got {len(args)}")
        grid, block = _dim3(grid), _dim3(block)
        packed = [_pack(name, p, a) for p, a in zip(params, args)]
        header = struct.pack("<i3i3iq", list(self.kernels).index(name), *grid, *block, shared_bytes)
        results = [self._run(header, s, packed, params, args) for s in schedules]
        for r in results[1:]:
            for i, (a, b) in enumerate(zip(results[0], r)):
                if a is not None and a != b:
                    raise EmuError(f"{name}: argument {params[i].name} differs between fiber "
                                   "schedules: a race (missing __syncthreads?)")
        for p, arr, out in zip(params, args, results[0]):
            if out is not None and not p.const:
                np.copyto(arr, np.frombuffer(out, dtype=arr.dtype).reshape(arr.shape))

    def _run(self, header, schedule, packed, params, args):
        with tempfile.TemporaryDirectory() as tmp:
            req, res = Path(tmp) / "req", Path(tmp) / "res"
            with open(req, "wb") as f:
                f.write(header + struct.pack("<ii", schedule, len(packed)))
                for blob in packed:
                    f.write(blob)
            r = subprocess.run([str(self.exe), str(req), str(res)], capture_output=True,
                               text=True, env={**os.environ, **ENV})
            if r.returncode:
                raise EmuError(f"kernel failed (exit {r.returncode}):\n{r.stderr[-6000:]}")
            data = res.read_bytes()
        outs, pos = [], 0
        for p, a in zip(params, args):
            if p.pointer:
                outs.append(data[pos:pos + a.nbytes])
                pos += a.nbytes
            else:
                outs.append(None)
        return outs


def _dim3(d):
    d = (d,) if isinstance(d, int) else tuple(d)
    return tuple(d) + (1,) * (3 - len(d))


def _pack(kernel, param, arg):
    if param.pointer:
        want = POINTER_TYPES.get(param.base)
        if want is None:
            raise TypeError(f"{kernel}: pointer type {param.base}* is not supported by the harness")
        if not isinstance(arg, np.ndarray) or arg.dtype != want or not arg.flags.c_contiguous:
            got = arg.dtype if isinstance(arg, np.ndarray) else type(arg).__name__
            raise TypeError(f"{kernel}: argument {param.name} ({param.base}*) needs a C-contiguous "
                            f"{np.dtype(want)} array, got {got}")
        return struct.pack("<iq", 0, arg.nbytes) + arg.tobytes()
    fmt = SCALAR_FORMATS.get(param.base)
    if fmt is None:
        raise TypeError(f"{kernel}: scalar type {param.base} is not supported by the harness")
    if isinstance(arg, np.ndarray) or (fmt in ("<f", "<d") and not isinstance(arg, (int, float, np.floating, np.integer))) \
            or (fmt not in ("<f", "<d") and not isinstance(arg, (int, np.integer, bool))):
        raise TypeError(f"{kernel}: argument {param.name} ({param.base}) got {type(arg).__name__}")
    blob = struct.pack(fmt, arg)
    return struct.pack("<iq", 1, len(blob)) + blob
