"""Datasets and loaders from options: the sampler, worker count and batch size in one place."""
from __future__ import annotations

import os
import signal

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from ..options import Options
from ..registry import DATASET_REGISTRY
from .sampler import ResumableSampler


def build_dataset(options: Options, phase: str) -> Dataset:
    spec = options.datasets[phase]
    return spec.dataset.build(DATASET_REGISTRY, scale=options.scale, seed=options.manual_seed,
                              train=phase == "train")


def resolve_workers(value, device: torch.device) -> int:
    """``auto``: none on CPU (workers would compete with compute for the same cores), else up to 4."""
    if value != "auto":
        return int(value)
    return 0 if device.type == "cpu" else min(4, usable_cores())


def usable_cores() -> int:
    """Cores this process may run on (taskset, cgroups, Slurm), not all the machine has."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _ignore_stop_signals(_worker_id: int) -> None:
    """Ctrl-C, and the SIGTERM of schedulers (Slurm, systemd, timeout), reach the whole process group:
    workers ignore them, the trainer saves and then stops them cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_train_loader(options: Options, dataset: Dataset, device: torch.device):
    spec = options.datasets["train"]
    sampler = ResumableSampler(len(dataset), options.manual_seed, spec.dataset_enlarge_ratio, shuffle=True)
    if sampler.per_epoch < spec.batch_size_per_gpu:
        raise UserError(f"datasets.train.batch_size_per_gpu: {spec.batch_size_per_gpu} is larger than the "
                        f"{sampler.per_epoch} samples of an epoch; lower it or raise dataset_enlarge_ratio")
    workers = resolve_workers(spec.num_worker_per_gpu, device)
    loader = DataLoader(dataset, batch_size=spec.batch_size_per_gpu, sampler=sampler, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=spec.pin_memory and device.type == "cuda",
                        prefetch_factor=2 if workers > 0 else None,
                        worker_init_fn=_ignore_stop_signals if workers > 0 else None,
                        generator=_own_generator(options))
    return loader, sampler


def build_val_loader(options: Options, phase: str, dataset: Dataset, device: torch.device) -> DataLoader:
    spec = options.datasets[phase]
    workers = resolve_workers(spec.num_worker_per_gpu, device)
    return DataLoader(dataset, batch_size=1, shuffle=False, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=spec.pin_memory and device.type == "cuda",
                      worker_init_fn=_ignore_stop_signals if workers > 0 else None,
                      generator=_own_generator(options))


def close_loader(loader: DataLoader) -> None:
    """Stop a loader's worker processes now. They ignore SIGINT/SIGTERM (the trainer handles those), so the
    interpreter's exit, which stops leftover workers with SIGTERM, could not; and an error's traceback can
    keep the iterator alive past the run."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    loader._iterator = None


def _own_generator(options: Options) -> torch.Generator:
    """Each loader iterator draws a worker base seed; from its own generator it leaves the global RNG (which
    a model's dropout may use) exactly where an uninterrupted run has it."""
    return torch.Generator().manual_seed(options.manual_seed)
