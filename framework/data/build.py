"""Datasets and loaders from options: the sampler, worker count and batch size in one place."""
from __future__ import annotations

import logging
import signal
from typing import Any, Dict, Iterable, Optional, Sized, Tuple, cast

import torch
from torch.utils.data import DataLoader, Dataset

from ..device import resolve_workers, usable_cores
from ..errors import UserError
from ..options import DatasetOptions, Options
from ..registry import DATASET_REGISTRY
from ..torch_private import shutdown_loader_workers
from .sampler import ResumableSampler
from .worker_errors import ReportingDataset, ReportingLoader, collate_samples

logger = logging.getLogger(__name__)


def build_dataset(options: Options, phase: str) -> Dataset:
    spec = options.datasets[phase]
    assert spec.dataset is not None
    return spec.dataset.build(DATASET_REGISTRY, scale=options.scale, seed=options.manual_seed,
                              train=phase == "train")


def num_samples(dataset: Dataset) -> int:
    """``len`` of a map-style dataset (torch's ``Dataset`` type does not declare it)."""
    return len(cast(Sized, dataset))


def _ignore_stop_signals(_worker_id: int) -> None:
    """Ctrl-C, and the SIGTERM of schedulers (Slurm, systemd, timeout), reach the whole process group:
    workers ignore them, the trainer saves and then stops them cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _loader(options: Options, phase: str, dataset: Dataset, device: torch.device, *, batch_size: int,
            sampler: Optional[Iterable[Any]] = None, drop_last: bool = False) -> DataLoader:
    """The loader settings train and validation share: workers that persist and ignore stop signals and hand
    their user errors over intact (:mod:`.worker_errors`), pinned memory on CUDA, and a generator of its own
    (see :func:`_own_generator`)."""
    spec = options.datasets[phase]
    workers = resolve_workers(spec.num_worker_per_gpu, device)
    _note_loader_settings(phase, spec.num_worker_per_gpu, workers, spec.prefetch_mode)
    extra: Dict[str, Any] = {"prefetch_factor": 2, "worker_init_fn": _ignore_stop_signals,
                             "collate_fn": collate_samples} if workers > 0 else {}
    return ReportingLoader(ReportingDataset(dataset) if workers > 0 else dataset, batch_size=batch_size,
                           sampler=sampler, shuffle=False, drop_last=drop_last, num_workers=workers,
                           persistent_workers=workers > 0, pin_memory=spec.pin_memory and device.type == "cuda",
                           generator=_own_generator(options), **extra)


def _note_loader_settings(phase: str, asked: object, workers: int, prefetch_mode: Optional[str]) -> None:
    """Obeyed, but said: more workers than cores, and BasicSR's prefetch_mode, which changes nothing here."""
    cores = usable_cores()
    if workers > cores:
        logger.warning(f"datasets.{phase}.num_worker_per_gpu: {asked} loader workers on {cores} usable CPU "
                       "core(s): they compete with each other and with training for the CPU; fewer (or auto) is "
                       "usually faster")
    if prefetch_mode is not None:
        logger.info(f"datasets.{phase}.prefetch_mode: {prefetch_mode} is accepted for BasicSR files and changes "
                    "nothing: the loader's workers prefetch, and CUDA batches come from pinned memory")


def loader_batch_size(options: Options) -> int:
    """Samples per loader batch of one process: ``batch_size_per_gpu`` micro-batches x ``accumulate_steps``
    (the model splits them), so one loader batch is one iteration."""
    steps = options.train.accumulate_steps if options.train is not None else 1
    return options.datasets["train"].batch_size_per_gpu * steps


def enlarge_ratio(spec: DatasetOptions, images: int) -> int:
    """``dataset_enlarge_ratio``; ``auto`` (traiNNer-redux's): enough repeats for about 2000 batches of small
    sets, none for large ones."""
    if spec.dataset_enlarge_ratio == "auto":
        return max(2000 * spec.batch_size_per_gpu // max(images, 1), 1)
    return int(spec.dataset_enlarge_ratio)


def build_train_loader(options: Options, dataset: Dataset, device: torch.device, *, rank: int = 0,
                       world_size: int = 1) -> Tuple[DataLoader, ResumableSampler]:
    """The training loader of process ``rank`` of ``world_size``: its shard of every epoch."""
    spec = options.datasets["train"]
    sampler = ResumableSampler(num_samples(dataset), options.manual_seed, enlarge_ratio(spec, num_samples(dataset)),
                               shuffle=True, num_replicas=world_size, rank=rank)
    batch = loader_batch_size(options)
    if sampler.per_epoch < batch:
        per = f" per process ({world_size} processes)" if world_size > 1 else ""
        steps = f" x accumulate_steps {batch // spec.batch_size_per_gpu}" if batch != spec.batch_size_per_gpu else ""
        raise UserError(f"datasets.train.batch_size_per_gpu: {spec.batch_size_per_gpu}{steps} is larger than the "
                        f"{sampler.per_epoch} samples of an epoch{per}; lower it or raise dataset_enlarge_ratio")
    loader = _loader(options, "train", dataset, device, batch_size=batch, sampler=sampler, drop_last=True)
    return loader, sampler


def build_val_loader(options: Options, phase: str, dataset: Dataset, device: torch.device, *, rank: int = 0,
                     world_size: int = 1) -> DataLoader:
    """Whole images one at a time; with several processes each takes every ``world_size``-th image."""
    shard = range(rank, num_samples(dataset), world_size) if world_size > 1 else None
    return _loader(options, phase, dataset, device, batch_size=1, sampler=shard)


def close_loader(loader: DataLoader) -> None:
    """Stop a loader's worker processes now. They ignore SIGINT/SIGTERM (the trainer handles those), so the
    interpreter's exit, which stops leftover workers with SIGTERM, could not; and an error's traceback can
    keep the iterator alive past the run."""
    shutdown_loader_workers(loader)


def _own_generator(options: Options) -> torch.Generator:
    """Each loader iterator draws a worker base seed; from its own generator it leaves the global RNG (which
    a model's dropout may use) exactly where an uninterrupted run has it."""
    return torch.Generator().manual_seed(options.manual_seed)
