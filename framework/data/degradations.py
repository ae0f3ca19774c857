"""Degradations that turn HR images into LQ ones (and the bicubic baseline back up).

Kept generic so the same code makes the stored example LR images and LQ images on the fly from HR: if both
went through different resizers, models trained on one would be tested on a slightly different degradation.
Inputs are float tensors in [0, 1], shaped (C, H, W) or (N, C, H, W); outputs have the same rank and dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bicubic_downsample", "bicubic_upsample"]


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


def _resize(img: torch.Tensor, size: tuple, antialias: bool) -> torch.Tensor:
    batched = img if img.dim() == 4 else img.unsqueeze(0)
    out = F.interpolate(batched, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    out = out.clamp_(0.0, 1.0)
    return out if img.dim() == 4 else out.squeeze(0)


def bicubic_downsample(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Shrink by an integer ``scale`` with antialiased bicubic (MATLAB ``imresize``-like), the classic SR degradation.

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
    return _resize(img, (h // scale, w // scale), antialias=True)


def bicubic_upsample(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Enlarge by an integer ``scale`` with plain bicubic: the baseline an SR network has to beat."""
    _check(img, scale, "bicubic_upsample")
    h, w = img.shape[-2:]
    if scale == 1:
        return img.clamp(0.0, 1.0)
    return _resize(img, (h * scale, w * scale), antialias=False)
