"""Degradations that turn HR images into LQ ones (and the bicubic baseline back up).

Kept generic so the same code makes the stored example LR images and LQ images on the fly from HR: if both
went through different resizers, models trained on one would be tested on a slightly different degradation.
Inputs are float tensors in [0, 1], shaped (C, H, W) or (N, C, H, W); outputs have the same rank and dtype.
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import torch

__all__ = ["bicubic_downsample", "bicubic_upsample", "imresize"]


def _check(img: torch.Tensor, scale: int, what: str) -> None:
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(img).__name__}")
    if img.dim() not in (3, 4):
        raise ValueError(f"{what}: expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(img.shape)}")
    if not img.is_floating_point():
        raise TypeError(f"{what}: expected a floating-point tensor in [0, 1], got {img.dtype} "
                        "(convert uint8 images with img.float() / 255)")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{what}: scale must be a positive integer, got {scale!r}")


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=64)
def _contributions(in_length: int, out_length: int, factor: int, shrink: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """MATLAB ``imresize(..., 'bicubic')`` along one axis: for each output pixel, the input indices (out, taps)
    and their weights (out, taps, float64). Shrinking by ``factor`` stretches the kernel by ``factor``
    (antialiasing); each row of weights sums to 1; indices beyond the edge are mirrored (symmetric padding:
    ..., 1, 0, 0, 1, ...), which is where MATLAB differs from torch's antialiased resize.

    Integer factors keep every output pixel's weights a function of its offset on the grid alone, computed
    exactly (half-integer coordinates): a window of an image resizes to bitwise the same pixels as the whole.
    """
    scale = 1.0 / factor if shrink else float(factor)
    width = 4.0 * factor if shrink else 4.0
    out = np.arange(1, out_length + 1, dtype=np.float64)
    # 1-based input coordinate of each output pixel: out / scale + (1 - 1 / scale) / 2
    centre = out * factor + 0.5 * (1 - factor) if shrink else out / factor + 0.5 * (1 - 1 / factor)
    left = np.floor(centre - width / 2)
    taps = int(np.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based
    distance = centre[:, None] - indices
    weights = scale * _cubic(scale * distance) if shrink else _cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    return torch.from_numpy(columns), torch.from_numpy(weights)


def _resize_axis(img: torch.Tensor, dim: int, factor: int, shrink: bool) -> torch.Tensor:
    length = img.shape[dim]
    out_length = length // factor if shrink else length * factor
    columns, weights = _contributions(length, out_length, factor, shrink)
    view = [1] * img.dim()
    view[dim] = out_length
    result = None
    for k in range(columns.shape[1]):  # tap by tap, in one order: no temporary of taps x the image
        term = img.index_select(dim, columns[:, k]) * weights[:, k].view(view)
        result = term if result is None else result.add_(term)
    assert result is not None
    return result


def imresize(img: torch.Tensor, factor: int, shrink: bool) -> torch.Tensor:
    """MATLAB's ``imresize(img, 1/factor)`` (``shrink``, antialiased) or ``imresize(img, factor)``, bicubic,
    clamped to [0, 1]: the resize that made the LR images of the benchmark sets (Set5, DIV2K's bicubic track)
    and that papers' bicubic baselines use. Height first, then width, as MATLAB does for equal factors. When
    shrinking, the size must be divisible by ``factor``."""
    if shrink and (img.shape[-2] % factor or img.shape[-1] % factor):
        raise ValueError(f"imresize: size {tuple(img.shape[-2:])} is not divisible by {factor}")
    # In float64, as MATLAB computes: float32 sums would put a pixel now and then on the other side of a
    # rounding edge when the result is stored as 8 bits.
    tall = _resize_axis(img.to(torch.float64), img.dim() - 2, factor, shrink)
    # Rows are gathered far faster than columns: the width pass runs on the transposed image.
    wide = _resize_axis(tall.transpose(-1, -2).contiguous(), img.dim() - 2, factor, shrink)
    return wide.transpose(-1, -2).clamp_(0.0, 1.0).to(img.dtype).contiguous()


def bicubic_downsample(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Shrink by an integer ``scale`` with MATLAB's antialiased bicubic ``imresize``, the classic SR degradation.

    Antialiasing matters: without it the LR image aliases and no longer looks like a camera's low-res shot.
    The size must divide exactly so that LR pixel ``i`` always covers HR pixels ``scale*i .. scale*i+scale-1``,
    which the paired crops of a dataset rely on.
    """
    _check(img, scale, "bicubic_downsample")
    h, w = img.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"bicubic_downsample: image size {h}x{w} (HxW) is not divisible by scale {scale}; "
                         f"crop it to {h - h % scale}x{w - w % scale} first")
    if scale == 1:
        return img.clamp(0.0, 1.0)
    return imresize(img, scale, shrink=True)


def bicubic_upsample(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Enlarge by an integer ``scale`` with MATLAB's bicubic ``imresize``: the baseline an SR network has to beat,
    as papers compute it."""
    _check(img, scale, "bicubic_upsample")
    if scale == 1:
        return img.clamp(0.0, 1.0)
    return imresize(img, scale, shrink=False)
