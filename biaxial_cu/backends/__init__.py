"""Backends of biaxial_cu.Model: reference (NumPy, the truth) and cuda (CuPy + kernels/)."""
