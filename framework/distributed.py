"""Several processes under torchrun: who this process is, the process group, and the few collectives the
trainer needs (stop agreement, the RNG states of every rank, validation values, the resume choice).

torchrun (``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` and starts one
process per device; launched without it, :func:`from_environment` gives a single-process context whose
collectives are plain local operations, so the trainer has one code path.

Failure policy: a rank that raises exits non-zero at once (after its message); torchrun then stops the other
workers, so none waits in a collective for the timeout below. The timeout only bounds what torchrun cannot see
(a rank stuck without dying).
"""
from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Any, List

import torch
import torch.distributed as dist

from .torch_private import c10d_store

logger = logging.getLogger(__name__)

# Seconds a collective may wait for the slowest rank (rank 0 writing a checkpoint to a slow file system is
# the longest legitimate wait); FRAMEWORK_DIST_TIMEOUT overrides it.
DEFAULT_TIMEOUT_S = 900


@dataclass
class DistContext:
    """This process's place in the run; ``world_size == 1`` is an ordinary single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    restart_count: int = 0
    max_restarts: int = 0
    _flags: Any = field(default=None, repr=False)  # a gloo group: CPU flags without a device sync

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier(group=self._flags)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (one small all-reduce on the CPU group)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self._flags)
        return bool(value.item())

    def gather(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, in rank order, on every rank (picklable plain data and CPU tensors)."""
        if not self.enabled:
            return [obj]
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self._flags)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self._flags)
        return box[0]

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def from_environment(device_type: str) -> DistContext:
    """The context of this process; under torchrun with more than one process, joins the process group
    (nccl on CUDA, gloo on CPU) with one device per process."""
    if not launched_by_torchrun():
        return DistContext()
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    context = DistContext(rank=rank, world_size=world, local_rank=local,
                          restart_count=int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0) or 0),
                          max_restarts=int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", 0) or 0))
    if world <= 1:
        return context
    timeout = datetime.timedelta(seconds=float(os.environ.get("FRAMEWORK_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))
    store = _attempt_store(context, timeout)
    if device_type == "cuda":
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", store=store, rank=rank, world_size=world, timeout=timeout,
                                device_id=torch.device("cuda", local))
        context._flags = dist.new_group(backend="gloo", timeout=timeout)
    else:
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=timeout)
        context._flags = None  # the default group is gloo already
    return context


def _attempt_store(context: DistContext, timeout: datetime.timedelta) -> dist.Store:
    """torchrun's store, under a prefix of its own for each restart of the group: the store outlives a
    restart (torchrun's agent serves it), and without the prefix the restarted ranks would read the addresses
    the previous attempt's processes published and connect to dead ports (or wait for them forever)."""
    store = c10d_store(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), context.rank,
                       context.world_size, timeout)
    return dist.PrefixStore(f"framework/attempt_{context.restart_count}", store)


# Set by scripts/torchrun.sh: the folder where each rank notes that it ended cleanly (finished, or stopped on a
# signal after the checkpoint was written), so the launcher can exit 0 although torchrun reports the signal it
# received as a failure.
CLEAN_EXIT_ENV = "FRAMEWORK_CLEAN_EXIT_DIR"


def note_clean_exit(context: DistContext) -> None:
    """Leave this rank's clean-exit marker (``attempt<restart>.rank<rank>``) where the launcher asked for it."""
    folder = os.environ.get(CLEAN_EXIT_ENV)
    if folder and launched_by_torchrun():
        with open(os.path.join(folder, f"attempt{context.restart_count}.rank{context.rank}"), "w") as fh:
            fh.write("clean\n")


def rank_seed(seed: int, rank: int) -> int:
    """The seed of one rank's own random draws (dropout and the like), derived from ``manual_seed``."""
    return seed * 1_000_003 + 7919 * (rank + 1)

