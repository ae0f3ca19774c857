#!/usr/bin/env bash
# Train on one machine with NPROC processes (one per GPU; on a CPU-only machine, CPU processes with gloo)
# under PyTorch's own launcher, torchrun:
#
#   scripts/dist_train.sh NPROC OPTIONS.yml [train.py arguments ...]
#   scripts/dist_train.sh 8 options/train/example.yml --auto-resume
#
# Exit code: 0 when every process finished, or stopped on SIGTERM / Ctrl-C after the checkpoint was saved (torchrun
# itself reports 1 then); non-zero when a process failed (scripts/torchrun.sh).
#
# Variables it reads:
#   PYTHON            the interpreter (default: python); torchrun runs as `$PYTHON -m torch.distributed.run`
#   MAX_RESTARTS      how often torchrun restarts the group after a worker dies (default 0); above 0 it adds
#                     --auto-resume, so a restarted group continues from the newest valid checkpoint
#   SHUTDOWN_TIMEOUT  seconds a stopped run (Ctrl-C, SIGTERM) has to finish its step and save before torchrun
#                     kills the workers (default 120)
#   CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS, FRAMEWORK_DIST_TIMEOUT: passed through (docs/distributed-and-precision.md)
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
# torchrun.sh: exit 0 when every process ended cleanly (also after a SIGTERM or Ctrl-C that stopped and saved)
PYTHON=$PYTHON exec bash "$ROOT/scripts/torchrun.sh" "$NPROC" --standalone --nnodes=1 \
    --max-restarts="$MAX_RESTARTS" "$ROOT/train.py" -opt "$OPT" "${extra[@]}" "$@"
