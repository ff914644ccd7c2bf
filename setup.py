from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path(__file__).with_name("biaxial_cu").joinpath("_version.py").read_text(), version)

setup(
    name="biaxial_cu",
    version=version["__version__"],
    description="The biaxial RNN for music composition (Johnson, 2015) on hand-written CUDA kernels",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["biaxial_cu", "biaxial_cu.*"]),
    package_data={"biaxial_cu": ["corpus_midi/**/*.mid", "corpus_midi/*.mid", "corpus_midi/*.txt"]},
    install_requires=["numpy>=1.24", "mido>=1.3", "numba>=0.58", "tqdm>=4.60"],
    extras_require={
        # [ctk]: the CUDA headers, NVRTC and cuBLAS from PyPI, which CuPy needs to compile kernels
        "cuda12": ["cupy-cuda12x[ctk]>=14"],
        "cuda13": ["cupy-cuda13x[ctk]>=14"],
        "viz": ["matplotlib>=3.6"],
        "corpus": ["music21>=9"],
        # TensorBoard logs (biaxial_cu/board.py): tensorboardX writes them, TensorBoard shows them
        # (and its reader checks them in the tests), soundfile encodes the samples' audio for them
        "tensorboard": ["tensorboardX>=2.6", "tensorboard>=2.14", "soundfile>=0.12"],
        # data-parallel training (mpirun -n N python -m biaxial_cu.train): mpi4py and MPICH's wheel,
        # which brings mpirun, so no system MPI is needed
        "mpi": ["mpi4py>=4", "mpich>=4"],
        # NVRTC and cuobjdump: tests/test_kernels_resources.py compiles every kernel as CuPy does
        # and reads each one's registers, local and shared memory from the binary (no GPU needed)
        "test": ["pytest>=7", "matplotlib>=3.6", "nvidia-cuda-nvrtc==13.*", "nvidia-cuda-cuobjdump==13.*",
                 "tensorboardX>=2.6", "tensorboard>=2.14", "soundfile>=0.12"],
    },
)
