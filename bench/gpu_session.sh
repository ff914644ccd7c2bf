#!/usr/bin/env bash
# bench/gpu_session.sh STAGE: what a lent GPU machine runs, in as few device calls as possible.
# Run it from the repository root through the device tool, with the wheels folder `.whl` (mido,
# which the device image lacks) and `peers` (the PyTorch baseline) carried; bench/README.md says
# how to prepare both. Everything lands in $OUT: one log per step, result JSON in $OUT/results.
#
#   check   GPU tests, then compute-sanitizer (memcheck, racecheck) on the small-model test
#   train   bench/train.py with the peer (eager and graph at 10, 32, 64; compile at 10)
#   rest    bench/generate.py with the peer, bench/profile_batch.py, bench/lstm_tiles.py, bench/midi.py
# Each stage fits one device call (600 s); call them back to back so the machine stays warm.
# The device gets the tree without .git: name the commit, e.g. (from here)
#   BIAXIAL_CU_COMMIT=$(git rev-parse HEAD) -> put the literal hash into the device command.
set -uo pipefail
STAGE=${1:-check}
OUT=${OUT:-/tmp/biaxial_out}
mkdir -p "$OUT/results"
[[ -n ${BIAXIAL_CU_COMMIT:-} ]] || echo "warning: BIAXIAL_CU_COMMIT is not set: results will name no commit"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUT/nvidia-smi.csv" 2>&1
cat "$OUT/nvidia-smi.csv"

# step NAME LIMIT_S COMMAND...: run with a time limit, log to $OUT/NAME.log, show the log's tail
step() {
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  echo "== $name (limit ${limit} s): $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "   exit $rc after $((SECONDS - start)) s"
  tail -n 12 "$OUT/$name.log"
}

SMALL="tests/test_cuda_backend.py::test_small_model_runs_every_kernel"
if [[ $STAGE == check ]]; then
  step pytest-gpu 300 python3 -m pytest -m gpu -q -rA --durations=10 -p no:cacheprovider tests
  for tool in memcheck racecheck; do
    step "sanitizer-$tool" 120 compute-sanitizer --tool "$tool" --error-exitcode 9 \
      python3 -m pytest -q -p no:cacheprovider -m gpu "$SMALL"
  done
fi
PEER=()
[[ -f peers/torch_biaxial.py ]] && PEER=(--peer peers/torch_biaxial.py)
if [[ $STAGE == train ]]; then
  step bench-train 560 python3 bench/train.py "${PEER[@]}" --iters 20 --results-dir "$OUT/results"
fi
if [[ $STAGE == rest ]]; then
  step bench-generate 300 python3 bench/generate.py "${PEER[@]}" --results-dir "$OUT/results"
  step bench-profile 90 python3 bench/profile_batch.py --results-dir "$OUT/results"
  step bench-lstm-tiles 120 python3 bench/lstm_tiles.py --results-dir "$OUT/results"
  step bench-midi 60 python3 bench/midi.py --results-dir "$OUT/results"
fi
