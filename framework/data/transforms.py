"""Paired random crop and flips/rotations, drawing from an explicit ``torch.Generator``.

Every random choice comes from the generator the dataset makes for one sample, so a sample's augmentation
depends only on (seed, epoch, index): not on worker count, worker order or how many samples were skipped.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from ..errors import UserError


def paired_random_crop(gt: torch.Tensor, lq: torch.Tensor, gt_size: int, scale: int,
                       generator: torch.Generator, gt_path: str = "") -> Tuple[torch.Tensor, torch.Tensor]:
    """Crop ``gt_size`` from GT and the matching ``gt_size // scale`` from LQ, aligned on the LQ grid."""
    lq_size = gt_size // scale
    _, h_lq, w_lq = lq.shape
    problem = pair_scale_problem(gt_path, (gt.shape[2], gt.shape[1]), (w_lq, h_lq), scale)
    if problem:
        raise UserError(problem)
    top, left = crop_origin(h_lq, w_lq, lq_size, generator, f"{gt_path}: LQ image")
    lq = lq[:, top:top + lq_size, left:left + lq_size]
    gt = gt[:, top * scale:(top + lq_size) * scale, left * scale:(left + lq_size) * scale]
    return gt, lq


def pair_scale_problem(gt_path: str, gt_wh: Tuple[int, int], lq_wh: Tuple[int, int], scale: int,
                       lq_path: str = "") -> Optional[str]:
    """Why a GT/LQ pair is not ``scale`` apart (GT may exceed ``scale`` x LQ by less than ``scale``), or None.

    One check for the header scan, the decoded pair and the crop, so all three say the same thing."""
    (w_gt, h_gt), (w_lq, h_lq) = gt_wh, lq_wh
    if (w_gt // scale, h_gt // scale) == (w_lq, h_lq):
        return None
    lq = f"LQ {lq_path} is" if lq_path else "LQ is"
    return (f"{gt_path}: GT is {w_gt}x{h_gt} but {lq} {w_lq}x{h_lq}, which is not x{scale}; check 'scale' and "
            "the LQ folder")


def crop_origin(height: int, width: int, size: int, generator: torch.Generator, what: str) -> Tuple[int, int]:
    """A uniformly random (top, left) for a ``size`` square crop; too small an image is a user error."""
    if height < size or width < size:
        raise UserError(f"{what} {width}x{height} is smaller than the crop {size}x{size}; lower gt_size")
    top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
    return top, left


def augment(imgs: List[torch.Tensor], hflip: bool, rotation: bool, generator: torch.Generator) -> List[torch.Tensor]:
    """The 8 dihedral variants (BasicSR's hflip + vflip + rot90), the same one for every image of a pair."""
    draws = torch.rand(3, generator=generator).tolist()
    do_h = hflip and draws[0] < 0.5
    do_v = rotation and draws[1] < 0.5
    do_t = rotation and draws[2] < 0.5
    out = []
    for img in imgs:
        if do_h:
            img = img.flip(-1)
        if do_v:
            img = img.flip(-2)
        if do_t:
            img = img.transpose(-1, -2)
        out.append(img.contiguous())
    return out


def mod_crop(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right so both sides are multiples of ``scale``."""
    _, h, w = img.shape
    return img[:, :h - h % scale, :w - w % scale]
