"""Checks of what the options point at (folders, images, checkpoint files, devices), run before anything is
written, so a wrong path fails in a second instead of after the model is built and folders are created."""
from __future__ import annotations

import os
from typing import List

import torch

from .errors import UserError
from .options import Options
from .schema import Problem


def check_environment(options: Options, problems: List[Problem]) -> None:
    _check_device(options, problems)
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
    except UserError as exc:
        key, _, message = str(exc).partition(": ")
        known = {"dataroot_gt", "dataroot_lq", "gt_size", "filename_tmpl"}
        path = ("datasets", phase, key) if key in known else ("datasets", phase)
        if "smaller than the" in str(exc):
            path = ("datasets", phase, "gt_size")
        problems.append(Problem(path, message if key in known else str(exc)))
        return
    del sample


def _check_model(options: Options, problems: List[Problem]) -> None:
    """Build network, loss, optimizer and schedule on the CPU and push a 16x16 input through the network:
    argument combinations the schema cannot see (``upscale`` vs ``scale``, list lengths) fail here."""
    from .models.sr_model import build_network
    from .registry import MODEL_REGISTRY

    try:
        model = MODEL_REGISTRY.get(options.model_type)(options, torch.device("cpu"))
    except UserError as exc:
        problems.append(Problem(("network_g",) if "network" in str(exc).lower() else ("train",), str(exc)))
        return
    net = model.net_g if hasattr(model, "net_g") else build_network(options)
    channels = int(options.network_g.kwargs.get("num_in_ch", 3))
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(1, channels, 16, 16))
    except UserError as exc:
        problems.append(Problem(("network_g",), str(exc)))
        return
    expected = 16 * options.scale
    if tuple(out.shape[-2:]) != (expected, expected):
        problems.append(Problem(("network_g",), f"{options.network_g.type} turns 16x16 into "
                                                f"{out.shape[-1]}x{out.shape[-2]}, but scale is {options.scale} "
                                                f"(expected {expected}x{expected}); make its upscale match scale"))
