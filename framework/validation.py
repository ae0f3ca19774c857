"""Validation: run a network over a dataset, compute the configured metrics, optionally save the outputs.

Shared by the trainer and test.py. Outputs are quantized to uint8 before the metrics, exactly like the PNG a
user would look at and like the numbers papers report. The network runs whole or in tiles (``val.tile_size``)
through the same code as tiled inference. For a few chosen images, a comparison strip (bicubic | output |
GT of one centre crop) is made on the way, for TensorBoard and W&B.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch.utils.data import DataLoader

from .data.degradations import bicubic_upsample
from .data.image_io import write_image
from .metrics import tensor_to_uint8
from .registry import METRIC_REGISTRY
from .schema import Component
from .models.base import Model
from .options import ValOptions
from .tiling import input_multiple, run_tiled

PerImage = Dict[str, float]
Infer = Callable[[torch.Tensor], torch.Tensor]
# (position of the image in this process's loader, its name, lq (1, C, h, w) float, output and GT uint8 (C, H, W))
# -> its comparison strip, or None for an image not shown.
StripFn = Callable[[int, str, torch.Tensor, torch.Tensor, torch.Tensor], Optional[torch.Tensor]]
# Bicubic is exact inside a crop with this many LR pixels of context (its kernel reaches 2 pixels each side).
_BICUBIC_MARGIN = 2


@dataclass
class ImageResult:
    name: str
    values: PerImage
    strip: Optional[torch.Tensor] = None  # uint8 (C, h, 3 w): bicubic | output | GT, for the shown images


@dataclass
class Evaluation:
    """The averages over a set and each image's values, in the set's order."""

    averages: Dict[str, float]
    images: List[ImageResult] = field(default_factory=list)

    def rows(self) -> List[Dict[str, object]]:
        """``[{'image': name, metric: value, ...}]`` for the per-image table."""
        return [{"image": image.name, **image.values} for image in self.images]

    def by_name(self) -> Dict[str, PerImage]:
        return {image.name: image.values for image in self.images}


# Every process's per-image results, in rank order (DistContext.gather); single process: [[...]].
Gather = Callable[[List[ImageResult]], List[List[ImageResult]]]


def evaluate(infer: Infer, loader: DataLoader, metrics: Mapping[str, Component], save_dir: Optional[str] = None,
             suffix: str = "", strips: Optional[StripFn] = None, gather: Optional[Gather] = None) -> Evaluation:
    """Each metric over the images of ``loader`` (batch size 1; ``infer`` sees whole images and may tile them,
    see :func:`model_inference`), per image and averaged; ``strips`` makes the comparison strips on the way.

    Under torchrun each process measures its shard (every world_size-th image, see ``build_val_loader``);
    ``gather`` brings the per-image results together and every rank sums them in image order, so the averages
    are the single-process ones, bit for bit.
    """
    functions = {name: METRIC_REGISTRY.get(c.type) for name, c in metrics.items()}
    results: List[ImageResult] = []
    for batch in loader:
        output = infer(batch["lq"])
        for i in range(output.shape[0]):
            name = batch["name"][i]
            out_img = tensor_to_uint8(output[i])
            gt_img = tensor_to_uint8(batch["gt"][i])
            values = {metric: fn(out_img, gt_img, **dict(metrics[metric].kwargs)) for metric, fn in functions.items()}
            strip = strips(len(results), name, batch["lq"][i:i + 1], out_img, gt_img) if strips else None
            results.append(ImageResult(name, values, strip))
            if save_dir is not None:
                write_image(out_img, os.path.join(save_dir, f"{name}{suffix}.png"))
    shards = gather(results) if gather is not None else [results]
    # image j * world + r of the set is item j of rank r's shard
    ordered = [shard[j] for j in range(max(map(len, shards), default=0)) for shard in shards if j < len(shard)]
    totals = {name: 0.0 for name in metrics}
    for image in ordered:
        for name in totals:
            totals[name] += image.values[name]
    return Evaluation({name: total / max(len(ordered), 1) for name, total in totals.items()}, ordered)


def bicubic_baseline(loader: DataLoader, metrics: Mapping[str, Component], scale: int,
                     gather: Optional[Gather] = None) -> Evaluation:
    """The metrics of plain bicubic upsampling on a set: the number a trained model has to beat."""
    return evaluate(lambda lq: bicubic_upsample(lq, scale), loader, metrics, gather=gather)


def tiled(infer: Infer, *, scale: int, multiple: int, tile: int, pad: int) -> Infer:
    """``infer`` on whole images (``tile`` 0) or in tiles, padded to the network's input multiple: the code
    of tiled inference (:func:`framework.tiling.run_tiled`)."""
    return lambda lq: run_tiled(infer, lq, scale=scale, multiple=multiple, tile=tile, pad=pad)


def model_inference(model: Model, val: ValOptions, scale: int) -> Infer:
    """What validation runs (train.py and test.py): the model's deploy network, tiled as ``val`` says."""
    return tiled(model.inference, scale=scale, multiple=input_multiple(model.networks().get("net_g")),
                 tile=val.tile_size, pad=val.tile_pad)


# ------------------------------------------------------------------------------------------ comparison strips


def crop_box(height: int, width: int, crop: int, scale: int) -> Tuple[int, int, int, int]:
    """(top, left, height, width) in GT pixels of the centre crop of side ``crop`` (the image's size where it is
    smaller), all multiples of ``scale`` so the crop maps onto whole LR pixels."""
    h = max(scale, min(crop, height) // scale * scale)
    w = max(scale, min(crop, width) // scale * scale)
    top = (height - h) // 2 // scale * scale
    left = (width - w) // 2 // scale * scale
    return top, left, h, w


def comparison_strip(lq: torch.Tensor, out_img: torch.Tensor, gt_img: torch.Tensor, scale: int,
                     crop: int) -> torch.Tensor:
    """bicubic | output | GT of the same centre crop, side by side: uint8 (C, h, 3 w). The bicubic panel is
    computed on the crop's LR pixels plus a margin, which gives the whole image's bicubic pixels there."""
    top, left, h, w = crop_box(gt_img.shape[-2], gt_img.shape[-1], crop, scale)
    m = _BICUBIC_MARGIN
    t, lft = max(top // scale - m, 0), max(left // scale - m, 0)
    patch = lq[..., t:(top + h) // scale + m, lft:(left + w) // scale + m]
    up = bicubic_upsample(patch.float(), scale)
    oy, ox = top - t * scale, left - lft * scale
    bicubic = tensor_to_uint8(up[..., oy:oy + h, ox:ox + w])
    panels = [bicubic, out_img[:, top:top + h, left:left + w], gt_img[:, top:top + h, left:left + w]]
    return torch.cat(panels, dim=-1)


def strip_maker(show: Union[int, Tuple[str, ...]], crop: int, scale: int, rank: int = 0,
                world_size: int = 1) -> Optional[StripFn]:
    """The strips of ``val.show_images``: the first N images of a set (image j of a process's shard is image
    j * world_size + rank of the set), or the images with these names. None when nothing is shown."""
    if not show:
        return None
    names = set(show) if isinstance(show, tuple) else set()
    first = show if isinstance(show, int) else 0

    def make(position: int, name: str, lq: torch.Tensor, out_img: torch.Tensor,
             gt_img: torch.Tensor) -> Optional[torch.Tensor]:
        chosen = name in names or position * world_size + rank < first
        return comparison_strip(lq, out_img, gt_img, scale, crop) if chosen else None

    return make
