"""kernels/*.cu as CuPy sees them: sources, compile options, compiled functions, launch geometry.

Kernels compile once per process (cupy.RawModule, which also keeps its own disk cache of
binaries). The `#include "common.cuh"` line is replaced by the header's text before compiling,
so CuPy's cache key covers the header too; tests/test_kernels_resources.py compiles exactly this
source with exactly these options (plus CuPy's own) for sm_80 and sm_90.
"""
import contextlib

import numpy as np

from ...nvrtc import BASE_OPTIONS, KERNELS_DIR

MODULES = ("adadelta", "dropout", "features", "layout", "lstm", "output_loss", "sample")
# Per-module extra NVRTC options: sample.cu must not fuse multiply-adds, so its dot products
# round as the CPU generator's do (exact compositions for the same uniforms).
MODULE_OPTIONS = {"sample": ("--fmad=false",)}
ACTS = {"identity": 0, "tanh": 1}  # common.cuh's ACT_*
LOSS_THREADS = 256  # output_loss.cu
NORM_THREADS = 256  # adadelta.cu's segment_sq_norms
ELEMENTWISE_THREADS = 256  # one thread per element: layout.cu, dropout.cu, adadelta_update
FEATURE_THREADS = 128  # features.cu

# lstm.cu's tiles. Blocks are (32, *_TY) threads; a thread owns *_RPT rows (fp32), or TC_?W warps
# of TC_?M x 16 rows and TC_?U units a block, TC_?K k per shared-memory chunk (TF32, forward F and
# backward B). The first variant of each list is the default, the #defines in lstm.cu (a test ties
# them); bench/lstm_tiles.py times them all, and every one runs on the CPU harness and compiles.
# The backward defaults, 48 rows x 32 units, give a time-stack step (R 780, H 300) 170 blocks, at
# least one per SM of a 132-SM GPU; the 32 x 64 fp32 and 64 x 64 TF32 tiles second in their lists
# pull less through L2 but give it 125 and 65 (lstm.cu's header).
LSTM_FORWARD_TILES = [{"FWD_TY": 4, "FWD_RPT": 8}, {"FWD_TY": 8, "FWD_RPT": 4}, {"FWD_TY": 4, "FWD_RPT": 4},
                      {"FWD_TY": 8, "FWD_RPT": 8}, {"FWD_TY": 2, "FWD_RPT": 8}]
LSTM_BACKWARD_TILES = [{"BWD_TY": 4, "BWD_RPT": 12, "BWD_UPT": 1, "BWD_TK": 64},
                       {"BWD_TY": 8, "BWD_RPT": 4, "BWD_UPT": 2, "BWD_TK": 64},
                       {"BWD_TY": 8, "BWD_RPT": 4, "BWD_UPT": 2, "BWD_TK": 16},
                       {"BWD_TY": 4, "BWD_RPT": 8, "BWD_UPT": 2}, {"BWD_TY": 8, "BWD_RPT": 2, "BWD_UPT": 2},
                       {"BWD_TY": 8, "BWD_RPT": 4, "BWD_UPT": 1}, {"BWD_TY": 16, "BWD_RPT": 2, "BWD_UPT": 2}]
LSTM_FORWARD_TF32_TILES = [{"TC_FW": 4, "TC_FM": 1, "TC_FU": 16, "TC_FK": 16}, {"TC_FW": 4, "TC_FM": 2, "TC_FU": 16},
                           {"TC_FW": 8, "TC_FM": 1, "TC_FU": 16}, {"TC_FW": 2, "TC_FM": 1, "TC_FU": 16},
                           {"TC_FW": 4, "TC_FM": 1, "TC_FU": 8, "TC_FK": 32}]
LSTM_BACKWARD_TF32_TILES = [{"TC_BW": 3, "TC_BM": 1, "TC_BU": 32, "TC_BK": 48},
                            {"TC_BW": 4, "TC_BM": 1, "TC_BU": 64, "TC_BK": 64},
                            {"TC_BW": 4, "TC_BM": 1, "TC_BU": 32, "TC_BK": 64},
                            {"TC_BW": 4, "TC_BM": 1, "TC_BU": 64, "TC_BK": 32},
                            {"TC_BW": 8, "TC_BM": 1, "TC_BU": 32, "TC_BK": 32},
                            {"TC_BW": 2, "TC_BM": 1, "TC_BU": 64, "TC_BK": 64}]
LSTM_TILES = {**LSTM_FORWARD_TILES[0], **LSTM_BACKWARD_TILES[0]}
LSTM_TC_TILES = {**LSTM_FORWARD_TF32_TILES[0], **LSTM_BACKWARD_TF32_TILES[0]}


def cuda_unavailable_reason():
    """None when kernels can run on a GPU here, else why not."""
    try:
        import cupy
    except ImportError as e:
        return f"CuPy is not installed ({e}); pip install 'biaxial_cu[cuda13]' (or [cuda12])"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        return f"no usable CUDA device ({type(e).__name__}: {e})"
    if n == 0:
        return "no CUDA device found"
    if not (KERNELS_DIR / "common.cuh").is_file():
        return f"kernel sources not found in {KERNELS_DIR}"
    return None


def kernel_source(module):
    """kernels/<module>.cu with common.cuh inlined (what NVRTC compiles)."""
    common = (KERNELS_DIR / "common.cuh").read_text()
    return (KERNELS_DIR / f"{module}.cu").read_text().replace('#include "common.cuh"', common)


def module_options(module, defines=()):
    """Our NVRTC options for kernels/<module>.cu, plus -D<define> for each define: what
    cupy.RawModule gets as `options`. CuPy adds its own and the arch around them:
    nvrtc.cupy_options(module_options(m), "sm_90") is NVRTC's whole list (less CuPy's -I folders,
    which find nothing to include in kernel_source)."""
    return BASE_OPTIONS + MODULE_OPTIONS.get(module, ()) + tuple(f"-D{d}" for d in defines)


_modules = {}
_functions = {}  # (module, name) -> kernel: RawModule.get_function builds a new one per call


def kernel(module, name):
    """A compiled kernel function; the module compiles on first use."""
    import cupy

    if (module, name) not in _functions:
        if module not in _modules:
            _modules[module] = cupy.RawModule(code=kernel_source(module), options=module_options(module))
        _functions[module, name] = _modules[module].get_function(name)
    return _functions[module, name]


def blocks(n, size):
    """Blocks of size threads that cover n."""
    return (n + size - 1) // size


def lstm_step_kernel_name(direction, tf32):
    """lstm.cu's step kernel: "forward" / "backward", fp32 CUDA cores or TF32 tensor cores."""
    return f"lstm_step_{direction}" + ("_tf32" if tf32 else "")


def _tc_launch(R, H, tiles, direction):
    t = {**LSTM_TC_TILES, **(tiles or {})}
    warps, m_tiles, units = (t[f"TC_{direction}{k}"] for k in "WMU")
    return (blocks(H, units), blocks(R, 16 * m_tiles * warps)), (32 * warps,)


def lstm_forward_launch(R, H, tiles=None, tf32=False):
    """(grid, block) of lstm_step_forward for R rows of H units: a block covers FWD_TY * FWD_RPT
    rows x 32 units (tf32: TC_FW * TC_FM * 16 rows x TC_FU units). tiles: the -D values the
    kernel was compiled with (default LSTM_TILES / LSTM_TC_TILES)."""
    if tf32:
        return _tc_launch(R, H, tiles, "F")
    t = {**LSTM_TILES, **(tiles or {})}
    return (blocks(H, 32), blocks(R, t["FWD_TY"] * t["FWD_RPT"])), (32, t["FWD_TY"])


def lstm_backward_launch(R, H, tiles=None, tf32=False):
    """(grid, block) of lstm_step_backward: a block covers BWD_TY * BWD_RPT rows x 32 * BWD_UPT
    units (tf32: TC_BW * TC_BM * 16 rows x TC_BU units)."""
    if tf32:
        return _tc_launch(R, H, tiles, "B")
    t = {**LSTM_TILES, **(tiles or {})}
    return (blocks(H, 32 * t["BWD_UPT"]), blocks(R, t["BWD_TY"] * t["BWD_RPT"])), (32, t["BWD_TY"])


@contextlib.contextmanager
def cublas_tf32(cupy):
    """CuPy's float32 GEMMs on TF32 tensor cores inside the block (its process-wide setting,
    the one CUPY_TF32=1 selects, put back afterwards)."""
    from cupy._core import _routines_linalg as linalg

    before = linalg.get_compute_type(np.float32)
    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32)
    try:
        yield
    finally:
        linalg.set_compute_type(np.float32, before)
