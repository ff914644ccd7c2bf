"""Data-parallel training: `mpirun -n N python -m biaxial_cu.train ...` trains one model on N ranks.

MPI (mpi4py, the `[mpi]` extra) launches the ranks and carries their host-side messages; on the
cuda backend the gradient all-reduce is NCCL's (cupy.cuda.nccl; the unique id is broadcast over
MPI), in place on the backend's flat gradient buffer. A process not started by an MPI launcher
gets `Solo`, which does nothing, and mpi4py is never imported.

How N ranks train as one process would: every rank draws the same global batch and the same
dropout masks (same seed, same generator state), computes the gradients of its share of the rows
(`share`), the summed gradients are all-reduced, and every rank applies the same Adadelta step,
so the parameters stay identical everywhere. Only rows and the order of additions differ from one
process, never the data.

Every collective waits at most `timeout` seconds (BIAXIAL_CU_MPI_TIMEOUT, default
DEFAULT_TIMEOUT), except the `patient` ones the trainer makes while the music loads (a first load
of a big folder takes as long as it takes): a rank that dies or hangs ends the run with an error
instead of a hang. A rank
killed outright (a signal) is reported by the launcher, which stops the others at once and names
its process id: rank 0 prints each rank's process id and host when the run starts. Before each
collective every other rank tells rank 0 that it got there, so a timeout on rank 0 names the
ranks that did not. No message is pickled: everything travels as NumPy buffers.
"""
import os
import socket
import sys
import time

import numpy as np

# Environment variables that MPI launchers set in the processes they start: MPICH's and Intel
# MPI's hydra (PMI_*), Open MPI's (OMPI_*), PMIx launchers such as srun --mpi=pmix, MVAPICH.
LAUNCHER_ENV = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
TIMEOUT_ENV = "BIAXIAL_CU_MPI_TIMEOUT"
DEFAULT_TIMEOUT = 300.0  # seconds a rank waits in one collective (a checkpoint and sample included)
EXIT_RANK_LOST = 4  # the exit code of a run stopped because a rank died or hung
ARRIVAL_TAG = 7  # the tag of "I reached collective number k" messages to rank 0
MAX_POLL_SLEEP = 1e-3  # seconds between polls of a pending collective, at most
NCCL_UNIQUE_ID_BYTES = 128  # ncclUniqueId, which CuPy hands over as a tuple of 128 ints


class DistributedError(RuntimeError):
    """MPI asked for and unusable (mpi4py missing, a bad timeout)."""


def launched_by_mpi():
    """True in a process started by an MPI launcher (mpirun, mpiexec, srun with PMI)."""
    return any(name in os.environ for name in LAUNCHER_ENV)


def share(batch_size, rank, size):
    """The rows [start, stop) of a batch that a rank computes: contiguous, sizes differing by at
    most one; ValueError when some rank would get none."""
    if batch_size < size:
        raise ValueError(f"a batch of {batch_size} rows cannot be shared by {size} ranks: each rank "
                         f"needs at least one row (use --batch-size {size} or more, or fewer ranks)")
    return batch_size * rank // size, batch_size * (rank + 1) // size


def timeout_from_env():
    text = os.environ.get(TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise DistributedError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds > 0")
    return value


def world():
    """The ranks of this run: MpiWorld under an MPI launcher, else Solo."""
    return MpiWorld(timeout_from_env()) if launched_by_mpi() else Solo()


class Solo:
    """One process: every collective returns its input."""

    rank, size, local_rank, is_root = 0, 1, 0, True
    running = False  # set by the trainer once every rank has agreed to train
    last_words = ""

    def share(self, batch_size):
        return share(batch_size, 0, 1)

    def sum(self, values, what=""):
        return np.asarray(values, np.float64)  # (n,)

    def gather_text(self, text, what="", patient=False):
        return [text]

    def choose_gpu(self):
        pass

    def connect_gpus(self):
        pass


class MpiWorld:
    """The ranks of an MPI launch. reduce() sums the gradients in place: NCCL for a device
    buffer (after choose_gpu and connect_gpus), MPI for a host buffer."""

    def __init__(self, timeout=DEFAULT_TIMEOUT):
        try:
            from mpi4py import MPI
        except (ImportError, RuntimeError) as e:  # RuntimeError: mpi4py found no MPI library
            raise DistributedError(f"this process was started by an MPI launcher, but mpi4py cannot "
                                   f"be imported ({e}); install it with: pip install 'biaxial_cu[mpi]'") from None
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_root = self.rank == 0
        self.local_rank = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        self.timeout = timeout
        self.count = 0  # collectives entered so far, the same on every rank
        self.reached = np.zeros(self.size, np.int64)  # (N,) on rank 0: last collective each rank reached
        self.pending = []  # this rank's arrival messages still in flight: (request, buffer)
        self.nccl = None
        self.running = False  # set by the trainer once every rank has agreed to train
        self.last_words = ""  # said when a lost rank stops the run (the last good checkpoint)

    # ------------------------------------------------------------------ collectives

    def _wait(self, request, what, patient=False):
        """Poll a non-blocking collective until it completes; after timeout seconds (never when
        patient) say which ranks are missing and abort every rank."""
        deadline = float("inf") if patient else time.monotonic() + self.timeout
        pause = 0.0
        while not request.Test():
            if self.is_root:
                self._note_arrivals()
            if time.monotonic() > deadline:
                self._lost(what)
            time.sleep(pause)
            pause = min(MAX_POLL_SLEEP, pause * 2 or 1e-6)

    def _enter(self):
        """Count a collective and tell rank 0 this rank reached it."""
        self.count += 1
        if self.is_root:
            self._note_arrivals()
            self.reached[0] = self.count
            return
        self.pending = [(r, b) for r, b in self.pending if not r.Test()]
        buffer = np.array([self.count], np.int64)  # (1,)
        self.pending.append((self.comm.Isend(buffer, dest=0, tag=ARRIVAL_TAG), buffer))

    def _note_arrivals(self):
        status, buffer = self.MPI.Status(), np.zeros(1, np.int64)
        while self.comm.Iprobe(source=self.MPI.ANY_SOURCE, tag=ARRIVAL_TAG, status=status):
            source = status.Get_source()
            self.comm.Recv(buffer, source=source, tag=ARRIVAL_TAG)
            self.reached[source] = max(self.reached[source], buffer[0])

    def _lost(self, what):
        if self.is_root:
            self._note_arrivals()
            missing = [r for r in range(self.size) if self.reached[r] < self.count]
            who = (f"rank{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} did not reach"
                   if missing else "the other ranks did not finish")
        else:
            who = "no answer from the other ranks in"
        said = f"; {self.last_words}" if self.last_words else ""
        print(f"\nstopped: rank {self.rank}: {who} {what} within {self.timeout:g} s (a rank died or "
              f"hangs; see {TIMEOUT_ENV}){said}", file=sys.stderr, flush=True)
        self.abort(EXIT_RANK_LOST)

    def _allreduce(self, array, what, patient=False):
        """Sum a host array over the ranks, in place."""
        self._enter()
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM), what, patient)
        return array

    def sum(self, values, what="a sum"):
        """Elementwise sum of a few numbers over the ranks: (n,) float64."""
        return self._allreduce(np.array(values, np.float64), what)

    def gather_text(self, text, what="a message exchange", patient=False):
        """Every rank's text, in rank order, on every rank (patient: no timeout)."""
        data = np.frombuffer(text.encode("utf-8", "replace"), np.uint8)  # (n,)
        lengths = np.zeros(self.size, np.int64)  # (N,)
        lengths[self.rank] = data.size
        self._allreduce(lengths, what, patient)
        everything = np.zeros(int(lengths.sum()), np.uint8)  # (sum n,)
        start = int(lengths[:self.rank].sum())
        everything[start:start + data.size] = data
        self._allreduce(everything, what)
        ends = np.cumsum(lengths)
        return [everything[e - n:e].tobytes().decode("utf-8") for n, e in zip(lengths, ends)]

    def reduce(self, flat_grad, loss):
        """Sum the gradients (in place) and the loss over the ranks; returns the summed loss.
        A device buffer goes through NCCL once connect_gpus() has run, else through a host copy."""
        if not hasattr(flat_grad, "__cuda_array_interface__"):
            self._allreduce(flat_grad, "the gradient all-reduce")
        elif self.nccl is not None:
            self._nccl_allreduce(flat_grad)
        else:
            flat_grad.set(self._allreduce(flat_grad.get(), "the gradient all-reduce"))
        return float(self.sum([loss], "the loss sum")[0])

    # ------------------------------------------------------------------ the GPU

    def choose_gpu(self):
        """Make GPU local_rank (mod the GPUs this machine has) this process's device (no message)."""
        import cupy

        cupy.cuda.Device(self.local_rank % cupy.cuda.runtime.getDeviceCount()).use()

    def connect_gpus(self):
        """Set up NCCL across the ranks (a collective), after choose_gpu."""
        try:
            from cupy.cuda import nccl
        except ImportError as e:
            raise DistributedError(f"the cuda backend sums gradients with NCCL, which CuPy cannot load "
                                   f"({e}); install it with: pip install nvidia-nccl-cu13 (or -cu12)") from None
        unique_id = np.zeros(NCCL_UNIQUE_ID_BYTES, np.int64)  # (128,)
        if self.is_root:
            unique_id[:] = nccl.get_unique_id()
        self._enter()
        self._wait(self.comm.Ibcast(unique_id, root=0), "the NCCL set-up")
        self.nccl = nccl.NcclCommunicator(self.size, tuple(int(v) for v in unique_id), self.rank)

    def _nccl_allreduce(self, flat_grad):
        """NCCL's in-place sum of a float32 device buffer on the current stream, waited for with
        the timeout (a dead peer would otherwise block the next synchronisation forever)."""
        import cupy
        from cupy.cuda import nccl

        if flat_grad.dtype != np.float32:
            raise DistributedError(f"the NCCL all-reduce sums float32 buffers, got {flat_grad.dtype}")
        self._enter()
        stream = cupy.cuda.get_current_stream()
        self.nccl.allReduce(flat_grad.data.ptr, flat_grad.data.ptr, flat_grad.size, nccl.NCCL_FLOAT32,
                            nccl.NCCL_SUM, stream.ptr)
        self._wait(_EventRequest(stream.record()), "the NCCL gradient all-reduce")

    # ------------------------------------------------------------------ the run

    def share(self, batch_size):
        return share(batch_size, self.rank, self.size)

    def describe(self):
        """'2 ranks (MPICH Version: 5.0.2): rank 0 pid 123 on host, rank 1 pid 124 on host'."""
        places = self.gather_text(f"pid {os.getpid()} on {socket.gethostname()}", "the start")
        library = " ".join(self.MPI.Get_library_version().splitlines()[0].split())[:40]
        return f"{self.size} ranks ({library}): " + ", ".join(f"rank {r} {p}" for r, p in enumerate(places))

    def abort(self, code):
        """End every rank now (the launcher kills the others)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)


class _EventRequest:
    """A CUDA event polled like an MPI request."""

    def __init__(self, event):
        self.event = event

    def Test(self):  # noqa: N802 - the MPI request's name
        return self.event.done
