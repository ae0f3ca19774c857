#!/usr/bin/env bash
# torchrun on this node, with an exit code a scheduler can trust (used by dist_train.sh and slurm_train.sh):
#
#   scripts/torchrun.sh NPROC_PER_NODE [torchrun options ...] TRAIN.PY [train.py arguments ...]
#
# torchrun exits 1 whenever it receives SIGTERM or SIGINT, even when every worker then finished its step and the
# checkpoint was written. So each rank leaves a marker when it ends cleanly (training finished, or stopped on a
# signal after saving): the exit code is torchrun's, except 0 when every local process of torchrun's last attempt
# left its marker. A rank that failed leaves none, and the job still fails.
#
# torchrun runs in a process group of its own. A SIGTERM, SIGINT or SIGHUP sent to this script (alone or with its
# process group: Ctrl-C, kill, Slurm) is passed on once to torchrun's whole group, torchrun and its workers, as a
# terminal or Slurm signals them; each rank finishes its step, they agree on where to stop and rank 0 saves.
#
# Variables it reads: PYTHON (default: python); TMPDIR (where the markers live while it runs).
set -uo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 NPROC_PER_NODE [torchrun options ...] TRAIN.PY [arguments ...]" >&2
    exit 2
fi
NPROC=$1
shift
PYTHON=${PYTHON:-python}
MARKERS=$(mktemp -d "${TMPDIR:-/tmp}/torchrun_exit.XXXXXX")
trap 'rm -rf "$MARKERS"' EXIT
export FRAMEWORK_CLEAN_EXIT_DIR=$MARKERS
# setsid without a fork (this pid becomes torchrun's, and leads its process group)
"$PYTHON" -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' \
    "$PYTHON" -m torch.distributed.run --nproc_per_node="$NPROC" "$@" &
PID=$!
interrupted=0
forward() {
    interrupted=1
    kill -s "$1" -- "-$PID" 2>/dev/null || true
}
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP
while :; do
    interrupted=0
    wait "$PID"
    rc=$?
    [ "$interrupted" = 1 ] || break  # a forwarded signal interrupted the wait: wait for torchrun itself
done
# Workers outliving torchrun (it was killed) may still be writing the checkpoint: give them the shutdown time.
for _ in $(seq 1 $((${TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-120} * 10))); do
    kill -0 -- "-$PID" 2>/dev/null || break
    sleep 0.1
done
if [ "$rc" -ne 0 ]; then
    last=$(ls "$MARKERS" | sed -n 's/^attempt\([0-9]*\)\.rank.*/\1/p' | sort -n | tail -n 1)
    clean=$(ls "$MARKERS" | grep -c "^attempt${last:-x}\.rank")
    if [ -n "$last" ] && [ "$clean" -eq "$NPROC" ]; then
        echo "torchrun exited $rc, but all $NPROC processes of this node ended cleanly (stopped and saved): exit 0" >&2
        rc=0
    fi
fi
exit "$rc"
