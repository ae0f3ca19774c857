"""Batched JPEG compression in pure torch, for degrading training inputs on the training device.

Real-ESRGAN compresses every image of a batch at its own random quality on the GPU (its ``DiffJPEG``); a
library codec would mean a round trip through the CPU and 8-bit files per image. This module runs the steps of
a baseline libjpeg encode + decode, vectorised over the batch and the 8x8 blocks (no Python loop):

1. RGB -> YCbCr (JFIF, BT.601 full range) on the 0..255 scale, level-shifted by -128;
2. chroma 4:2:0: 2x2 averages of Cb and Cr (libjpeg's default ``h2v2`` downsampling);
3. per 8x8 block: orthonormal DCT-II, quantisation ``round(coef / Q) * Q`` with real rounding (half away from
   zero, like libjpeg's quantiser), inverse DCT, clamp to the 0..255 range (libjpeg range-limits every
   component after its IDCT). Q is per image, folded into one batched matmul each way;
4. chroma upsampling by libjpeg's "fancy" triangle filter (3/4, 1/4 along each axis, edge replicated at the
   real chroma size), which is exactly bilinear x2 with ``align_corners=False``; YCbCr -> RGB, clamp to [0, 1].

Quality: the standard tables of the JPEG spec (Annex K) scaled as libjpeg's ``jpeg_set_quality(q, TRUE)``:
``scale = 5000 // q`` below 50, ``200 - 2q`` from 50 on, entry ``(base * scale + 50) // 100`` clipped to
1..255. A non-integer quality (Real-ESRGAN draws floats from ``jpeg_range``) enters the same formula unrounded
(``floor(5000 / q)`` below 50), so the tables equal libjpeg's at every integer quality (tested against Pillow
for 1..100) and step monotonically between them.

Padding: the image is extended to a multiple of 16 (one 4:2:0 MCU) by replicating its last row / column, as
libjpeg does before downsampling and blocking, and the result is cropped back.

Against libjpeg (libjpeg-turbo through Pillow, 8-bit inputs, qualities 30-95; table and command in
tests/test_jpeg.py): mean absolute difference 0.5-1.1 grey levels on photo-like images and gradients (PSNR
43-51 dB between the two decodes), 1.4-2.4 on white noise, while libjpeg's own error against the input is
2-8x larger at quality <= 75. The rest is libjpeg's integer arithmetic: it rounds to 8 bits after the colour
conversion, the downsampling, its integer DCTs and the upsampling; here everything stays floating point, the
input is not rounded to 8 bits and the output is not either (the caller quantises once at the end of its
pipeline, as Real-ESRGAN does). Where Real-ESRGAN's DiffJPEG differs from libjpeg and we do not: it pads
with zeros (darker edge blocks), upsamples chroma by nearest neighbour, and scales the tables by
``scale / 100`` without rounding or clipping them.

Speed against libjpeg-turbo image by image: ``python scripts/bench_jpeg.py`` (figures in docs/benchmarks.md).

Exact under reduced-precision settings: autocast is switched off inside, and the whole codec (colour
conversion and block transforms) runs in float64 when ``torch.get_float32_matmul_precision()`` lets float32
matmuls use TF32 / bfloat16 (on GPUs, and on CPUs with bfloat16 units such as AMX; their error would move
coefficients across rounding points). No gradient flows (a degradation, not a loss): the work
runs under ``torch.no_grad()`` on a detached input, so a tensor that requires grad is accepted and the output
does not require grad. Deterministic: nothing random inside; the caller draws the qualities.
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Tuple, Union

import torch
import torch.nn.functional as F

__all__ = ["jpeg_compress", "quantization_tables"]

# JPEG spec Annex K.1 (luminance) and K.2 (chrominance), row-major natural order.
_LUMA_BASE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA_BASE = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)

# JFIF colour conversion (ITU-R BT.601, full range); chroma is centred on 128.
_RGB_TO_YCC = (
    (0.299, 0.587, 0.114),
    (-0.168735892, -0.331264108, 0.5),
    (0.5, -0.418687589, -0.081312411),
)
_YCC_TO_RGB = (
    (1.0, 0.0, 1.402),
    (1.0, -0.344136286, -0.714136286),
    (1.0, 1.772, 0.0),
)

_MCU = 16  # 4:2:0: one MCU is 16x16 luma pixels, 8x8 for each chroma plane


@functools.lru_cache(maxsize=None)
def _dct_basis() -> torch.Tensor:
    """``K`` (64, 64), float64, with ``coef_flat = block_flat @ K`` the orthonormal 2-D DCT-II of an 8x8 block."""
    n = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)  # d[u, i]: orthonormal 1-D DCT-II
    return torch.kron(d, d).t().contiguous()


@functools.lru_cache(maxsize=16)
def _basis(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The DCT matrix on ``device``, copied there once. Callers never modify it."""
    return _dct_basis().to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _matrix(rows: Tuple[Tuple[float, ...], ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A constant on ``device``, made once (no host-to-device copy per batch). Callers never modify it."""
    return torch.tensor(rows, dtype=dtype, device=device)


def quantization_tables(quality: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """libjpeg's luminance and chrominance tables for each quality in ``quality`` ([B], in [1, 100]).

    Returns two (B, 64) tensors in row-major order, on ``quality``'s device. At integer qualities they equal
    libjpeg's ``jpeg_set_quality(q, TRUE)``; see the module docstring for non-integer ones.
    """
    q = quality.to(torch.float64 if quality.device.type == "cpu" else torch.float32)
    scale = torch.where(q < 50, torch.floor(5000.0 / q), 200.0 - 2.0 * q)[:, None]
    tables = []
    for base in (_LUMA_BASE, _CHROMA_BASE):
        b = _matrix((base,), q.device, q.dtype)
        tables.append(torch.floor((b * scale + 50.0) / 100.0).clamp_(1.0, 255.0))
    return tables[0], tables[1]


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"jpeg_compress: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"jpeg_compress: expected RGB images shaped (B, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"jpeg_compress: expected a floating-point tensor in [0, 1], got {images.dtype} "
                        "(convert uint8 images with img.float() / 255)")


def _quality_error(bad: float) -> ValueError:
    return ValueError(f"jpeg_compress: quality must be in [1, 100] (as in jpeg_range), got {bad}")


def _qualities(quality: Union[torch.Tensor, float], batch: int, device: torch.device) -> torch.Tensor:
    """``quality`` as a float tensor [B] on ``device``, or a ValueError naming what is wrong."""
    if isinstance(quality, numbers.Real) and not isinstance(quality, bool):
        if not 1 <= float(quality) <= 100:  # NaN fails too
            raise _quality_error(float(quality))
        return torch.full((batch,), float(quality), dtype=torch.float32, device=device)
    if not isinstance(quality, torch.Tensor) or quality.is_complex() or quality.dtype == torch.bool:
        what = quality.dtype if isinstance(quality, torch.Tensor) else type(quality).__name__
        raise TypeError(f"jpeg_compress: quality must be a real number or a tensor of them, got {what}")
    if quality.dim() > 1 or (quality.dim() == 1 and quality.numel() != batch):
        raise ValueError(f"jpeg_compress: quality must be a scalar or a tensor of shape [{batch}] (one per "
                         f"image), got shape {list(quality.shape)}")
    q = quality.detach().to(device=device, dtype=torch.float32).reshape(-1)
    valid = (q >= 1) & (q <= 100)  # NaN fails too
    if not bool(valid.all()):
        raise _quality_error(q[~valid][0].item())
    return q.expand(batch)


def _to_blocks(planes: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) with H, W multiples of 8 -> (B, C*H/8*W/8, 64), each row one block in row-major order."""
    b, c, h, w = planes.shape
    return planes.reshape(b, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, -1, 64)


def _from_blocks(blocks: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    b, c, h, w = shape
    return blocks.reshape(b, c, h // 8, w // 8, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)


def _transform_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for the codec's matmuls when float32 matmuls may run in TF32 / bfloat16.

    ``torch.set_float32_matmul_precision('high')`` (or ``allow_tf32``) keeps about 10 mantissa bits: enough
    error to move coefficients across rounding boundaries, so the quantisation would no longer be the codec's.
    """
    if dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest":
        return torch.float64
    return dtype


def _quantize_planes(planes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """JPEG round trip of every 8x8 block of level-shifted ``planes`` (-128..127) with ``table`` (B, 64).

    The quantiser step is folded into the transforms: ``round(X K / Q) * Q K^T = round(X (K / Q)) (Q K^T)``,
    one batched matmul each way with a per-image matrix.
    """
    dtype = planes.dtype  # float64 under reduced matmul precision (jpeg_compress)
    k = _basis(planes.device, dtype)
    step = table.to(dtype)
    forward = k / step[:, None, :]  # (B, 64, 64): DCT, then divide coefficient j by Q[j]
    inverse = step[:, :, None] * k.t()  # (B, 64, 64): multiply by Q[j], then inverse DCT
    coef = torch.bmm(_to_blocks(planes).to(dtype), forward)
    # Half away from zero, like libjpeg's quantiser (torch.round would send halves to even).
    coef = coef.abs().add_(0.5).floor_().copysign_(coef)
    blocks = torch.bmm(coef, inverse).clamp_(-128.0, 127.0)  # libjpeg range-limits each component here
    return _from_blocks(blocks.to(planes.dtype), planes.shape)


def _mix_channels(matrix: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """``matrix`` (C_out, C_in) applied to every pixel of ``planes`` (B, C_in, H, W), without copying them."""
    b, c, h, w = planes.shape
    return torch.matmul(matrix, planes.reshape(b, c, h * w)).reshape(b, -1, h, w)


def _codec(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Encode + decode ``x`` (B, 3, H, W) in [0, 1] at ``quality`` [B]; float in, float out.

    Planes are kept level-shifted (Y - 128, Cb - 128, Cr - 128) from the colour conversion to the end.
    """
    _, _, h, w = x.shape
    pad_h, pad_w = -h % _MCU, -w % _MCU
    rgb = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
    ycc = _mix_channels(_matrix(_RGB_TO_YCC, x.device, x.dtype) * 255.0, rgb)
    luma = ycc[:, :1] - 128.0
    chroma = F.avg_pool2d(ycc[:, 1:], 2)
    luma_table, chroma_table = quantization_tables(quality)

    luma = _quantize_planes(luma, luma_table)[..., :h, :w]
    chroma = _quantize_planes(chroma, chroma_table)[..., :(h + 1) // 2, :(w + 1) // 2]
    # libjpeg's "fancy" h2v2 upsampling is a 3/4, 1/4 triangle filter along each axis with the edge sample
    # replicated: exactly bilinear interpolation by 2 with align_corners=False (which clamps at the edges).
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :w]

    out = _mix_channels(_matrix(_YCC_TO_RGB, x.device, x.dtype)[:, 1:] / 255.0, chroma)
    return out.add_(luma, alpha=1 / 255.0).add_(128 / 255.0).clamp_(0.0, 1.0)


def jpeg_compress(images: torch.Tensor, quality: Union[torch.Tensor, float]) -> torch.Tensor:
    """JPEG-compress and decode each image of ``images`` at its quality, as libjpeg at 4:2:0 would.

    ``images``: float (B, 3, H, W) RGB in [0, 1] (values outside are clamped first, as an 8-bit codec would
    see them), any H and W, on any device. ``quality``: one number or a tensor [B] of per-image qualities in
    [1, 100], floats allowed (see the module docstring), on any device; it is never modified. Returns the
    decoded images, same shape, dtype and device, in [0, 1], not rounded to 8 bits; float16 / bfloat16 are
    processed in float32. Raises ValueError for a quality outside [1, 100] or of the wrong shape. Checking
    the qualities' range reads them on the host: one synchronisation per call on CUDA.
    """
    _check_images(images)
    q = _qualities(quality, images.shape[0], images.device)
    if images.numel() == 0:
        return images.detach().clone()
    work = _transform_dtype(torch.float64 if images.dtype == torch.float64 else torch.float32)
    # No autocast: bfloat16 / float16 matmuls would move coefficients across the quantiser's rounding points.
    with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
        # Clamped like the 8-bit samples a real codec sees (noise may have pushed values out of [0, 1]).
        out = _codec(images.detach().to(work).clamp(0.0, 1.0), q)
    return out.to(images.dtype)
