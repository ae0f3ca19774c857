"""Which device a run uses and how many CPU threads torch gets beside the data-loader workers."""
from __future__ import annotations

import os
from typing import Literal, Union

import torch

from .options import Options


def device_named(name: str) -> torch.device:
    """``auto`` is CUDA when available; ``cuda`` and ``cpu`` are themselves."""
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def select_device(options: Options) -> torch.device:
    """The run's device (the option checks already refused ``device: cuda`` without one); under torchrun,
    the GPU of this process's ``LOCAL_RANK``."""
    device = device_named(options.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def usable_cores() -> int:
    """Cores this process may run on (taskset, cgroups, Slurm), not all the machine has."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def resolve_workers(value: Union[int, Literal["auto"]], device: torch.device) -> int:
    """``auto``: none on CPU (workers would compete with compute for the same cores), else up to 4."""
    if value != "auto":
        return int(value)
    return 0 if device.type == "cpu" else min(4, usable_cores())


def auto_threads() -> int:
    """``num_threads: auto`` on CPU: this process's share of the cores (torchrun's processes on one machine
    share them), whatever the number of loader workers.

    Workers that prefetch small crops are idle most of the time, and a core left to them is a core the
    convolutions do not get (``scripts/bench_overhead.py --workers 2 --threads 1,2`` compares the two; figures in
    docs/benchmarks.md). On a machine whose cores other jobs also want, fewer threads win (threads wait for a
    descheduled one); set ``num_threads`` there."""
    return max(1, usable_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1) or 1)))


def configure_threads(options: Options, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: the fastest kernels are worth finding once
        if options.fast_matmul:
            torch.set_float32_matmul_precision("high")
            torch.backends.cudnn.allow_tf32 = True
    if isinstance(options.num_threads, int):
        torch.set_num_threads(options.num_threads)
    elif device.type == "cpu" and options.train_set is not None:
        torch.set_num_threads(auto_threads())
