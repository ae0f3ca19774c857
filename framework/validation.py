"""Validation: run a network over a dataset, compute the configured metrics, optionally save the outputs.

Shared by the trainer and test.py. Outputs are quantized to uint8 before the metrics, exactly like the PNG a
user would look at and like the numbers papers report.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Mapping, Optional

import torch
from torch.utils.data import DataLoader

from .data.degradations import bicubic_upsample
from .data.image_io import write_image
from .metrics import tensor_to_uint8
from .registry import METRIC_REGISTRY
from .schema import Component


PerImage = Dict[str, float]
# Every process's per-image values, in rank order (DistContext.gather); single process: [[...]].
Gather = Callable[[List[PerImage]], List[List[PerImage]]]


def evaluate(infer: Callable[[torch.Tensor], torch.Tensor], loader: DataLoader,
             metrics: Mapping[str, Component], save_dir: Optional[str] = None, suffix: str = "",
             on_first: Optional[Callable[[str, torch.Tensor], None]] = None,
             gather: Optional[Gather] = None) -> Dict[str, float]:
    """Average of each metric over the images of ``loader`` (batch size 1, whole images).

    ``on_first(name, output_uint8)`` sees the first output (e.g. for TensorBoard) without a second pass.
    Under torchrun each process measures its shard (every world_size-th image, see ``build_val_loader``);
    ``gather`` brings the per-image values together and every rank sums them in image order, so the averages
    are the single-process ones, bit for bit.
    """
    functions = {name: METRIC_REGISTRY.get(c.type) for name, c in metrics.items()}
    values: List[PerImage] = []
    for batch in loader:
        output = infer(batch["lq"])
        for i in range(output.shape[0]):
            out_img = tensor_to_uint8(output[i])
            gt_img = tensor_to_uint8(batch["gt"][i])
            values.append({name: fn(out_img, gt_img, **dict(metrics[name].kwargs))
                           for name, fn in functions.items()})
            if on_first is not None and len(values) == 1:
                on_first(batch["name"][i], out_img)
            if save_dir is not None:
                write_image(out_img, os.path.join(save_dir, f"{batch['name'][i]}{suffix}.png"))
    shards = gather(values) if gather is not None else [values]
    # image j * world + r of the set is item j of rank r's shard
    ordered = [shard[j] for j in range(max(map(len, shards), default=0)) for shard in shards if j < len(shard)]
    totals = {name: 0.0 for name in metrics}
    for image in ordered:
        for name in totals:
            totals[name] += image[name]
    return {name: total / max(len(ordered), 1) for name, total in totals.items()}


def bicubic_baseline(loader: DataLoader, metrics: Mapping[str, Component], scale: int,
                     gather: Optional[Gather] = None) -> Dict[str, float]:
    """The metrics of plain bicubic upsampling on a set: the number a trained model has to beat."""
    return evaluate(lambda lq: bicubic_upsample(lq, scale), loader, metrics, gather=gather)
