"""Checks of what the options point at (folders, images, checkpoint files, devices), run before anything is
written, so a wrong path fails in a second instead of after the model is built and folders are created."""
from __future__ import annotations

import os
from typing import List

import torch

from .errors import OptionError, UserError, building
from .options import Options
from .schema import Problem


def check_environment(options: Options, problems: List[Problem]) -> None:
    _check_device(options, problems)
    _check_output_roots(options, problems)
    _check_model(options, problems)
    for phase, dataset in options.datasets.items():
        _check_dataset(options, phase, problems)
    for key in ("pretrain_path", "resume_path"):
        value = getattr(options.path, key)
        if value and not (key == "resume_path" and value == "auto"):
            if not os.path.isfile(value):
                problems.append(Problem(("path", key), f"file '{value}' does not exist"))


def _check_device(options: Options, problems: List[Problem]) -> None:
    if options.device == "cuda" and not torch.cuda.is_available():
        problems.append(Problem(("device",), "cuda asked for but no CUDA device is available "
                                             f"(torch {torch.__version__}); use device: auto or cpu"))


def _check_dataset(options: Options, phase: str, problems: List[Problem]) -> None:
    """Build the dataset (scans folders and pairs files, reads no pixels) and read its first sample."""
    from .data.build import build_dataset
    try:
        dataset = build_dataset(options, phase)
        if hasattr(dataset, "verify_files"):
            dataset.verify_files()
        sample = dataset[(0, 0)] if phase == "train" else dataset[0]
        if phase != "train" and options.val is not None:
            _check_metrics(options, sample, phase, problems)
    except UserError as exc:
        key, _, message = str(exc).partition(": ")
        known = {"dataroot_gt", "dataroot_lq", "gt_size", "filename_tmpl"}
        path = ("datasets", phase, key) if key in known else ("datasets", phase)
        if "smaller than the" in str(exc):
            path = ("datasets", phase, "gt_size")
        problems.append(Problem(path, message if key in known else str(exc)))


def _check_model(options: Options, problems: List[Problem]) -> None:
    """Build network, loss, optimizer and schedule on the CPU and push a 16x16 input through the network:
    argument combinations the schema cannot see (``upscale`` vs ``scale``, list lengths, a negative lr)
    fail here, each at its own key."""
    from .registry import MODEL_REGISTRY

    try:
        model = MODEL_REGISTRY.get(options.model_type)(options, torch.device("cpu"))
    except OptionError as exc:
        problems.append(Problem(exc.path, exc.detail))
        return
    channels = int(options.network_g.kwargs.get("num_in_ch", 3))
    try:
        with torch.no_grad():
            out = model.net_g.eval()(torch.zeros(1, channels, 16, 16))
    except UserError as exc:
        problems.append(Problem(("network_g",), str(exc)))
        return
    expected = 16 * options.scale
    if tuple(out.shape[-2:]) != (expected, expected):
        problems.append(Problem(("network_g",), f"{options.network_g.type} turns 16x16 into "
                                                f"{out.shape[-1]}x{out.shape[-2]}, but scale is {options.scale} "
                                                f"(expected {expected}x{expected}); make its upscale match scale"))


def _check_output_roots(options: Options, problems: List[Problem]) -> None:
    """Each output root must be a folder, or creatable as one, and writable."""
    for key in ("weights_root", "experiments_root"):
        root = getattr(options.path, key)
        existing = root
        while existing and not os.path.exists(existing):
            existing = os.path.dirname(existing.rstrip(os.sep))
        existing = existing or "."
        if not os.path.isdir(existing):
            problems.append(Problem(("path", key), f"'{existing}' is a file, not a folder"))
        elif not os.access(existing, os.W_OK | os.X_OK):
            problems.append(Problem(("path", key), f"no permission to write in '{existing}'"))


def _check_metrics(options: Options, sample: dict, phase: str, problems: List[Problem]) -> None:
    """Run each metric on the first validation image against itself: crop_border too large for the images
    and the like fail here rather than after the first training interval."""
    from .metrics import tensor_to_uint8
    from .registry import METRIC_REGISTRY

    img = tensor_to_uint8(sample["gt"])
    for name, component in options.val.metrics.items():
        try:
            with building("val", "metrics", name, args=component.kwargs):
                METRIC_REGISTRY.get(component.type)(img, img, **dict(component.kwargs))
        except OptionError as exc:
            problems.append(Problem(exc.path, f"{exc.detail} (first image of datasets.{phase}: "
                                              f"{img.shape[-1]}x{img.shape[-2]})"))
