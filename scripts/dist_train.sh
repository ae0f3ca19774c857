#!/usr/bin/env bash
# Train on one machine with NPROC processes (one per GPU; on a CPU-only machine, CPU processes with gloo)
# under PyTorch's own launcher, torchrun:
#
#   scripts/dist_train.sh NPROC OPTIONS.yml [train.py arguments ...]
#   scripts/dist_train.sh 8 options/train/example.yml --auto-resume
#
# Variables it reads:
#   PYTHON            the interpreter (default: python); torchrun runs as `$PYTHON -m torch.distributed.run`
#   MAX_RESTARTS      how often torchrun restarts the group after a worker dies (default 0); above 0 it adds
#                     --auto-resume, so a restarted group continues from the newest valid checkpoint
#   SHUTDOWN_TIMEOUT  seconds a stopped run (Ctrl-C, SIGTERM) has to finish its step and save before torchrun
#                     kills the workers (default 120)
#   CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS, FRAMEWORK_DIST_TIMEOUT: passed through (see the README)
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 NPROC OPTIONS.yml [train.py arguments ...]" >&2
    exit 2
fi
NPROC=$1
OPT=$2
shift 2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
MAX_RESTARTS=${MAX_RESTARTS:-0}
export TORCH_ELASTIC_SHUTDOWN_TIMEOUT=${SHUTDOWN_TIMEOUT:-120}
extra=()
if [ "$MAX_RESTARTS" -gt 0 ]; then
    extra+=(--auto-resume)
fi
exec "$PYTHON" -m torch.distributed.run --standalone --nnodes=1 --nproc_per_node="$NPROC" \
    --max-restarts="$MAX_RESTARTS" "$ROOT/train.py" -opt "$OPT" "${extra[@]}" "$@"
