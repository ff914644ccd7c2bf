#!/usr/bin/env bash
# bench/gpu_session.sh [BUDGET_S]: everything a lent GPU machine runs, in ONE device call.
#
# A session gets 15 device-minutes in all (the machine's start, a minute or more, included) and
# one command runs at most 600 s, so the whole GPU work is one call of about 9 minutes: the steps
# below in order of what matters most, each under its own time limit, and no step started once
# less than 20 s of BUDGET_S (default 540) is left; a step gets at most what is left.
#   1 train-10      the headline: batch 10 of the original configuration, the peer (eager, graph),
#                   then ours (fp32, TF32 GEMMs, all TF32), then the NumPy reference, in one process
#   2 pytest-gpu    every GPU exactness test (python -m pytest -m gpu), the TF32 ones (2b) apart
#   3 generate      1280 steps, 1 and 64 pieces: the peer, ours, numba (1 piece)
#   4 profile       one training batch, kernel by kernel, fp32 and TF32
#   5 train-32-64   batches 32 and 64, the peer (eager, graph) and ours
#   6 lstm-tiles    tile variants of kernels/lstm.cu's fp32 and TF32 step kernels
#   6b scale, nccl  data-parallel throughput on the GPUs (bench/scale.py) and the NCCL all-reduce
#                   test (tests/test_distributed.py), with the MPI wheels of .whl/mpi
#   7 memcheck, 8 racecheck   compute-sanitizer on the small all-kernel GPU test (fp32 and TF32)
#   9 peer-compile  the peer under torch.compile at batch 10 (slow to compile, so last but one)
#  10 midi          corpus load time
# Everything lands in $OUT/session.tgz (logs/, results/, steps.txt), packed again after every
# step so that a call cut short still brings back what finished; $OUT/steps.txt is the same
# one line per step. Run it from the repository root through the device tool, carrying `.whl`
# (the mido wheel: the device image lacks mido) and `peers` (the PyTorch baseline); the device
# gets the tree without .git, so name the commit:
#   BIAXIAL_CU_COMMIT=<hash of HEAD> bash bench/gpu_session.sh 540
# bench/README.md says how to prepare `.whl` and `peers` and what to do with session.tgz.
set -uo pipefail
BUDGET=${1:-540}
OUT=${OUT:-/tmp/biaxial_out}
WORK=${BIAXIAL_CU_SESSION_DIR:-/tmp/biaxial_session}
rm -rf "$WORK" && mkdir -p "$WORK/logs" "$WORK/results" "$OUT"
[[ -n ${BIAXIAL_CU_COMMIT:-} ]] || echo "warning: BIAXIAL_CU_COMMIT is not set: results will name no commit"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || echo "warning: the wheels in .whl did not install"
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
# MPI (mpi4py + MPICH's wheel, which brings mpirun) in a venv over the image's packages: MPICH's
# libraries install under the environment's prefix, where mpi4py looks for them.
MPIPY=python3
if compgen -G ".whl/mpi/*.whl" > /dev/null && python3 -m venv --system-site-packages /tmp/mpienv \
    && /tmp/mpienv/bin/python -m pip install -q --no-index --no-deps --no-cache-dir .whl/mpi/*.whl; then
  MPIPY=/tmp/mpienv/bin/python
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c 'import cupy, torch, numpy, numba; print("cupy", cupy.__version__, "torch", torch.__version__,
"numpy", numpy.__version__, "numba", numba.__version__)'
  command -v compute-sanitizer; } > "$WORK/logs/setup.log" 2>&1
cat "$WORK/logs/setup.log"

pack() {  # everything so far into $OUT/session.tgz, replaced whole (never half-written)
  cp "$WORK/steps.txt" "$OUT/steps.txt" 2>/dev/null
  tar czf "$OUT/session.tgz.part" -C "$WORK" . && mv "$OUT/session.tgz.part" "$OUT/session.tgz"
}

# step NAME LIMIT_S COMMAND...: run under min(LIMIT_S, what is left), log to logs/NAME.log
step() {
  local name=$1 limit=$2 left=$((BUDGET - SECONDS)) start=$SECONDS rc
  shift 2
  if ((left < 20)); then
    echo "$name: not run (${left} s of the budget left)" | tee -a "$WORK/steps.txt"
    return
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit} s): $*"
  timeout -k 5 "$limit" "$@" > "$WORK/logs/$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc after $((SECONDS - start)) s$( ((rc == 124 || rc == 137)) && echo ' (time limit)')" \
    | tee -a "$WORK/steps.txt"
  tail -n 8 "$WORK/logs/$name.log"
  pack
}

R=(--results-dir "$WORK/results")
QUICK=()  # BIAXIAL_CU_SESSION_QUICK=1: small models, so the CPU test of this script takes seconds
[[ ${BIAXIAL_CU_SESSION_QUICK:-} == 1 ]] && QUICK=(--quick)
PEER=()
[[ -f peers/torch_biaxial.py ]] && PEER=(--peer peers/torch_biaxial.py)
SMALL="tests/test_cuda_backend.py::test_small_model_runs_every_kernel"
PYTEST=(python3 -m pytest -q -rA -p no:cacheprovider -m gpu)
step train-10 150 python3 bench/train.py "${QUICK[@]}" "${PEER[@]}" "${R[@]}" --batches 10 --iters 20 --peer-modes eager,graph
step pytest-gpu 150 "${PYTEST[@]}" --durations=10 -k "not tf32" tests
step pytest-gpu-tf32 90 "${PYTEST[@]}" --durations=10 -k tf32 tests  # apart: a fault there costs nothing else
step generate 150 python3 bench/generate.py "${QUICK[@]}" "${PEER[@]}" "${R[@]}" --numpy-pieces 1
step profile 60 python3 bench/profile_batch.py "${R[@]}"
step train-32-64 120 python3 bench/train.py "${QUICK[@]}" "${PEER[@]}" "${R[@]}" --batches 32,64 --iters 10 --parts cuda,peer \
  --peer-modes eager,graph
step lstm-tiles 60 python3 bench/lstm_tiles.py "${R[@]}"
step scale 60 env PATH="$(dirname "$MPIPY"):$PATH" "$MPIPY" bench/scale.py "${QUICK[@]}" "${R[@]}" --backend cuda \
  --ranks "$(nvidia-smi -L 2>/dev/null | wc -l | awk '{n = $1 > 0 ? $1 : 1; s = "1"; for (i = 2; i <= n; i *= 2) s = s "," i; print s}')"
step nccl 45 env PATH="$(dirname "$MPIPY"):$PATH" "$MPIPY" -m pytest -q -rA -p no:cacheprovider -m gpu tests/test_distributed.py
for tool in memcheck racecheck; do
  step "$tool" 100 env BIAXIAL_CU_RAW_ALLOC=1 compute-sanitizer --tool "$tool" --error-exitcode 9 --print-limit 20 \
    "${PYTEST[@]}" "$SMALL"
done
step peer-compile 150 python3 bench/train.py "${QUICK[@]}" "${PEER[@]}" "${R[@]}" --batches 10 --iters 20 --parts peer \
  --peer-modes compile
step midi 20 python3 bench/midi.py "${R[@]}"
echo "== results"
python3 bench/summarize.py --print "$WORK/results" | tee "$WORK/summary.md"
pack
cat "$WORK/steps.txt"
