"""The cuda backend: CuPy glue around kernels/*.cu (backend.py), the device generator
(generator.py), and the kernels as CuPy compiles and launches them (kernels.py)."""
from .backend import CudaBackend
from .generator import DeviceGenerator
from .kernels import (LSTM_TC_TILES, LSTM_TILES, cuda_unavailable_reason, kernel, kernel_source, lstm_backward_launch,
                      lstm_forward_launch, lstm_step_kernel_name, module_options)

__all__ = ["CudaBackend", "DeviceGenerator", "LSTM_TC_TILES", "LSTM_TILES", "cuda_unavailable_reason", "kernel",
           "kernel_source", "lstm_backward_launch", "lstm_forward_launch", "lstm_step_kernel_name", "module_options"]
