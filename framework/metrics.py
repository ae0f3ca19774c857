"""PSNR and SSIM exactly as super-resolution papers report them.

The numbers must be comparable with published tables, which almost all come from BasicSR's
``calculate_psnr`` / ``calculate_ssim`` (the MATLAB conventions): float64 on 0-255 values of the
*quantized* image, an optional border crop, an optional BT.601 luma (Y) channel that is not rounded,
and SSIM with an 11x11 Gaussian (sigma 1.5) in 'valid' mode, averaged per channel.
Images here are torch tensors (C, H, W) in RGB order; the colour weights are applied accordingly.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F

from .option_rules import MetricSpec
from .registry import METRIC_REGISTRY

__all__ = ["calculate_psnr", "calculate_ssim", "tensor_to_uint8", "rgb_to_y"]

# ITU-R BT.601 "studio swing" luma on 0-255 values, as MATLAB's rgb2ycbcr; weights in R, G, B order.
_Y_WEIGHTS_RGB = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def tensor_to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Quantize a [0, 1] float image to uint8 (C, H, W), so metrics see the same pixels a saved PNG holds."""
    if img.dim() == 4:
        if img.shape[0] != 1:
            raise ValueError(f"tensor_to_uint8 expects a single image (1, C, H, W), got shape {tuple(img.shape)}")
        img = img[0]
    if img.dim() != 3:
        raise ValueError(f"tensor_to_uint8 expects (C, H, W) or (1, C, H, W), got shape {tuple(img.shape)}")
    # float32 arithmetic (float64 kept as is) reproduces BasicSR's tensor2img pixel for pixel.
    work = torch.float64 if img.dtype == torch.float64 else torch.float32
    img = img.detach().to(work)
    # On the CPU: metrics compare with CPU ground truth, and PNG writing needs it there anyway.
    return torch.round(img.clamp(0.0, 1.0) * 255.0).to(torch.uint8).cpu()


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of an RGB (3, H, W) 0-255 image as float64 (1, H, W), unrounded like BasicSR's test_y_channel."""
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"rgb_to_y expects an RGB image of shape (3, H, W), got {tuple(img.shape)}")
    img = img.to(torch.float64)
    r, g, b = img[0], img[1], img[2]
    wr, wg, wb = _Y_WEIGHTS_RGB
    y = (wr * r + wg * g + wb * b) / 255.0 + _Y_OFFSET
    return y.unsqueeze(0)


def _prepare(img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool,
             what: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """Validate, then crop / take Y in float64 so both metrics see identical pixels."""
    if not isinstance(img, torch.Tensor) or not isinstance(img2, torch.Tensor):
        raise ValueError(f"{what}: images must be torch tensors, got {type(img).__name__} and {type(img2).__name__}")
    if img.shape != img2.shape:
        raise ValueError(f"{what}: image shapes differ: {tuple(img.shape)} vs {tuple(img2.shape)}")
    if img.dim() != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"{what}: expected images of shape (C, H, W) with C = 1 or 3, got {tuple(img.shape)}")
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ValueError(f"{what}: crop_border must be >= 0, got {crop_border}")
    h, w = img.shape[-2:]
    if 2 * crop_border >= h or 2 * crop_border >= w:
        raise ValueError(f"{what}: crop_border {crop_border} leaves nothing of a {h}x{w} image")

    img = img.to(torch.float64)
    img2 = img2.to(torch.float64)
    if crop_border:
        img = img[:, crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[:, crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel and img.shape[0] == 3:
        img = rgb_to_y(img)
        img2 = rgb_to_y(img2)
    return img, img2


@METRIC_REGISTRY.register(aliases=("psnr",))
def calculate_psnr(img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0,
                   test_y_channel: bool = False) -> float:
    """PSNR in dB over all channels at once (one MSE), matching BasicSR; ``inf`` for identical images."""
    img, img2 = _prepare(img, img2, crop_border, test_y_channel, "calculate_psnr")
    mse = torch.mean((img - img2) ** 2).item()
    if mse == 0:
        return float("inf")
    return 10.0 * math.log10(255.0 * 255.0 / mse)


calculate_psnr.option_spec = MetricSpec(better="higher")  # BasicSR's `better`; LPIPS/NIQE would say lower


def _gaussian_window(device: torch.device) -> torch.Tensor:
    """The 11x11 sigma-1.5 Gaussian (outer product of OpenCV's normalized 1-D kernel) as a conv2d weight."""
    half = _SSIM_WINDOW // 2
    x = torch.arange(_SSIM_WINDOW, dtype=torch.float64, device=device) - half
    k = torch.exp(-(x ** 2) / (2 * _SSIM_SIGMA ** 2))
    k = k / k.sum()
    return torch.outer(k, k).view(1, 1, _SSIM_WINDOW, _SSIM_WINDOW)


def _ssim_per_channel(img: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of each channel of (C, H, W) float64 images, using 'valid' filtering only."""
    c = img.shape[0]
    window = _gaussian_window(img.device).expand(c, 1, _SSIM_WINDOW, _SSIM_WINDOW)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t.unsqueeze(0), window, groups=c)[0]

    mu1 = filt(img)
    mu2 = filt(img2)
    mu1_sq = mu1 * mu1
    mu2_sq = mu2 * mu2
    mu1_mu2 = mu1 * mu2
    sigma1_sq = filt(img * img) - mu1_sq
    sigma2_sq = filt(img2 * img2) - mu2_sq
    sigma12 = filt(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _SSIM_C1) * (2 * sigma12 + _SSIM_C2)) / (
        (mu1_sq + mu2_sq + _SSIM_C1) * (sigma1_sq + sigma2_sq + _SSIM_C2))
    return ssim_map.mean(dim=(1, 2))


@METRIC_REGISTRY.register(aliases=("ssim",))
def calculate_ssim(img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0,
                   test_y_channel: bool = False) -> float:
    """SSIM per channel, then averaged, matching BasicSR / the reference MATLAB code (1.0 for identical images)."""
    img, img2 = _prepare(img, img2, crop_border, test_y_channel, "calculate_ssim")
    h, w = img.shape[-2:]
    if h < _SSIM_WINDOW or w < _SSIM_WINDOW:
        raise ValueError(f"calculate_ssim: needs at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after cropping, "
                         f"got {h}x{w}")
    return float(_ssim_per_channel(img, img2).mean().item())


calculate_ssim.option_spec = MetricSpec(better="higher")
