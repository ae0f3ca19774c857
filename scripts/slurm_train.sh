#!/usr/bin/env bash
#SBATCH --job-name=sr-train
#SBATCH --ntasks-per-node=1
#SBATCH --signal=TERM@300
# Train on several machines under Slurm: srun starts one torchrun per node, which starts one process per GPU;
# the torchruns meet at a rendezvous endpoint on the job's first node. Submit from the repository root:
#
#   sbatch --nodes=2 --gres=gpu:8 --time=48:00:00 scripts/slurm_train.sh OPTIONS.yml [train.py arguments ...]
#   (or inside an allocation: salloc --nodes=2 --gres=gpu:8, then bash scripts/slurm_train.sh OPTIONS.yml)
#
# --signal=TERM@300 makes Slurm send SIGTERM 5 minutes before the time limit: torchrun forwards it, every rank
# stops at the same iteration and rank 0 saves; resubmit with --auto-resume to continue. Each node's
# scripts/torchrun.sh exits 0 when all its processes stopped cleanly and saved (torchrun itself reports 1 after a
# signal), so the job ends COMPLETED, not FAILED, and requeue or dependency logic reads it right; a process that
# failed still fails the job.
#
# Variables it reads:
#   GPUS_PER_NODE     processes per node (default: SLURM_GPUS_ON_NODE, else 8)
#   PORT              the rendezvous port on the first node (default 29500)
#   PYTHON            the interpreter (default: python; passed to each node's scripts/torchrun.sh)
#   MAX_RESTARTS      torchrun restarts after a worker dies (default 0; above 0 it adds --auto-resume)
#   SHUTDOWN_TIMEOUT  seconds a stopped run has to save before torchrun kills it (default 120)
#   SRUN_ARGS         extra srun arguments (e.g. "--partition=gpu")
#   from Slurm: SLURM_JOB_NODELIST, SLURM_NNODES, SLURM_JOB_ID, SLURM_SUBMIT_DIR
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: sbatch --nodes=N --gres=gpu:G $0 OPTIONS.yml [train.py arguments ...]" >&2
    exit 2
fi
: "${SLURM_JOB_NODELIST:?run under sbatch or salloc (SLURM_JOB_NODELIST is not set)}"
OPT=$1
shift
ROOT=${SLURM_SUBMIT_DIR:-$(pwd)}
export PYTHON=${PYTHON:-python}
GPUS_PER_NODE=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}
PORT=${PORT:-29500}
MAX_RESTARTS=${MAX_RESTARTS:-0}
export TORCH_ELASTIC_SHUTDOWN_TIMEOUT=${SHUTDOWN_TIMEOUT:-120}
HOSTS=$(scontrol show hostnames "$SLURM_JOB_NODELIST")  # no `| head`: with pipefail its SIGPIPE would fail
HEAD=${HOSTS%%$'\n'*}
NNODES=${SLURM_NNODES:-$(wc -l <<< "$HOSTS")}
extra=()
if [ "$MAX_RESTARTS" -gt 0 ]; then
    extra+=(--auto-resume)
fi
# shellcheck disable=SC2086  # SRUN_ARGS is a list of arguments
exec srun --nodes="$NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    bash "$ROOT/scripts/torchrun.sh" "$GPUS_PER_NODE" --nnodes="$NNODES" \
    --rdzv_backend=c10d --rdzv_endpoint="$HEAD:$PORT" --rdzv_id="${SLURM_JOB_ID:-sr-train}" \
    --max-restarts="$MAX_RESTARTS" "$ROOT/train.py" -opt "$OPT" "${extra[@]}" "$@"
