"""What a training run tells the user about itself, as lines: the environment it runs in, its batch, its start-up
time, its closing summary and the report of ``--dry-run``. The trainer logs (or prints) them; it composes none."""
from __future__ import annotations

import platform
from typing import Dict, List, Mapping, Optional

import torch
import yaml

from .device import usable_cores
from .distributed import DistContext
from .logger import seconds_since_import
from .malloc import malloc_status
from .models.base import DryRun, Model, parameter_count
from .network_spec import describe_network
from .options import Options
from .validation import Evaluation
from .version import __version__


def environment_lines(options: Options, device: torch.device, dist: DistContext, async_save: bool) -> List[str]:
    """Versions, device and threads, allocator, how checkpoints are written, the processes, the network and
    the effective options: what a log needs to explain a run later."""
    lines = [f"framework {__version__}, torch {torch.__version__}, python {platform.python_version()}, "
             f"{platform.platform()}"]
    threads = torch.get_num_threads()
    if device.type == "cuda":
        lines.append(f"device: cuda ({torch.cuda.get_device_name(device)}), {threads} CPU threads")
    else:
        lines.append(f"device: cpu ({usable_cores()} usable cores, {threads} torch threads)")
    lines.append(malloc_status())
    lines.append(f"checkpoints: {'written in the background' if async_save else 'written in the loop'}"
                 f" (logger.async_save: {str(options.logger.async_save).lower()})")
    if dist.enabled:
        backend = "nccl" if device.type == "cuda" else "gloo"
        lines.append(f"torchrun: {dist.world_size} processes ({backend}), one {device.type} device each; rank 0 "
                     "writes logs and checkpoints")
    lines.append(f"network_g: {describe_network(options.network_g)}")
    lines.append(f"options file: {options.source_file}; effective options:\n" +
                 yaml.safe_dump(options.to_dict(), sort_keys=False).rstrip())
    return lines


def batch_line(options: Options, dist: DistContext, loader_batch: int) -> Optional[str]:
    """The global batch, where it is more than one process's ``batch_size_per_gpu`` (several processes, or
    accumulated micro-batches); ``loader_batch`` holds the micro-batches of one process."""
    spec = options.datasets["train"]
    steps = options.train.accumulate_steps if options.train is not None else 1
    if not dist.enabled and steps == 1:
        return None
    parts = [f"{spec.batch_size_per_gpu} per process"]
    if steps > 1:
        parts.append(f"{steps} accumulated micro-batches")
    parts.append(f"{dist.world_size} process(es)")
    return (f"World size {dist.world_size}; global batch per iteration {loader_batch * dist.world_size} "
            f"({' x '.join(parts)})")


def startup_line(resuming: bool) -> str:
    """The start-up latency users wait through (interpreter, imports, checks, resume, loader start)."""
    return (f"Start-up: first batch in hand {seconds_since_import():.2f} s after the framework was imported "
            f"({'resumed' if resuming else 'fresh start'})")


def summary_lines(last_metrics: Mapping[str, Mapping[str, float]], baselines: Mapping[str, Evaluation],
                  iteration: int) -> List[str]:
    """The closing lines: each validation metric against the bicubic baseline."""
    lines = []
    for name, values in last_metrics.items():
        base = baselines[name].averages if name in baselines else {}
        parts = []
        for metric, value in values.items():
            if metric in base:
                parts.append(f"{metric} {value:.4f} vs bicubic {base[metric]:.4f} ({value - base[metric]:+.4f})")
            else:
                parts.append(f"{metric} {value:.4f}")
        lines.append(f"Final validation {name} @ iter {iteration}: " + ", ".join(parts))
    return lines


def dry_run_lines(options: Options, model: Model, device: torch.device, report: DryRun,
                  gt_shape: tuple, train_images: int, batches: int, val_images: Dict[str, int]) -> List[str]:
    """``--dry-run``'s report on what was built and one batch through it (``val_images``: images per
    validation set name)."""
    spec = options.datasets["train"]
    lines = [f"network_g: {describe_network(options.network_g)}"]
    for name, net in model.networks().items():
        lines.append(f"network {name} ({type(net).__name__}): {parameter_count(model, name):,} parameters on "
                     f"{device}")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in report.losses.items())
    lines.append(f"train set: {train_images} images, {batches} batches of {spec.batch_size_per_gpu} per epoch; "
                 f"one batch {report.input_shape} -> {report.output_shape} (gt {gt_shape}), {losses}, forward "
                 f"{report.forward_ms:.0f} ms")
    lines += [f"validation set {name}: {images} images" for name, images in val_images.items()]
    return lines
