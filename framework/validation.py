"""Validation: run a network over a dataset, compute the configured metrics, optionally save the outputs.

Shared by the trainer and test.py. Outputs are quantized to uint8 before the metrics, exactly like the PNG a
user would look at and like the numbers papers report.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Mapping, Optional

import torch
from torch.utils.data import DataLoader

from .data.degradations import bicubic_upsample
from .data.image_io import write_image
from .metrics import tensor_to_uint8
from .registry import METRIC_REGISTRY
from .schema import Component


def evaluate(infer: Callable[[torch.Tensor], torch.Tensor], loader: DataLoader,
             metrics: Mapping[str, Component], save_dir: Optional[str] = None, suffix: str = "",
             on_first: Optional[Callable[[str, torch.Tensor], None]] = None) -> Dict[str, float]:
    """Average of each metric over the images of ``loader`` (batch size 1, whole images).

    ``on_first(name, output_uint8)`` sees the first output (e.g. for TensorBoard) without a second pass.
    """
    functions = {name: METRIC_REGISTRY.get(c.type) for name, c in metrics.items()}
    totals = {name: 0.0 for name in metrics}
    count = 0
    for batch in loader:
        output = infer(batch["lq"])
        for i in range(output.shape[0]):
            out_img = tensor_to_uint8(output[i])
            gt_img = tensor_to_uint8(batch["gt"][i])
            for name, fn in functions.items():
                totals[name] += fn(out_img, gt_img, **dict(metrics[name].kwargs))
            if on_first is not None and count == 0:
                on_first(batch["name"][i], out_img)
            if save_dir is not None:
                write_image(out_img, os.path.join(save_dir, f"{batch['name'][i]}{suffix}.png"))
            count += 1
    return {name: total / max(count, 1) for name, total in totals.items()}


def bicubic_baseline(loader: DataLoader, metrics: Mapping[str, Component], scale: int) -> Dict[str, float]:
    """The metrics of plain bicubic upsampling on a set: the number a trained model has to beat."""
    return evaluate(lambda lq: bicubic_upsample(lq, scale), loader, metrics)
