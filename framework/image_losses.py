"""traiNNer-redux's loss family (entries of ``train.losses``), each from its published definition:
MS-SSIM (Wang et al. 2003) with cosine similarity (``mssimloss``), MS-SSIM + L1 (Zhao et al. 2017,
``msssiml1loss``), HSLuv colour (``hsluvloss``), LDL's artefact map (Liang et al., CVPR 2022, ``ldlloss``),
focal frequency (Jiang et al., ICCV 2021, ``ffloss``), cosine similarity (``cosimloss``), Sobel edges
(``sobeledgeloss``) and NVIDIA's FLIP (``fliploss``). Inputs are RGB in [0, 1]; every loss is scaled by its
``loss_weight`` and, marked ``float32``, runs in float32 under mixed precision (framework.loss_set), as
traiNNer-redux runs them.
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, List, Literal, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .errors import UserError
from .loss_set import loss_weight
from .option_rules import LossSpec, keys_valid
from .registry import LOSS_REGISTRY
from .schema import Component, Path_, Problem

if TYPE_CHECKING:
    from .options import Options

Criterion = Literal["l1", "l2", "charbonnier"]
# MS-SSIM's exponents of its five scales (Wang, Simoncelli, Bovik 2003).
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def criterion_fn(owner: str, criterion: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The mean distance a ``criterion`` key names: l1, l2 (squared error) or charbonnier (sqrt(d^2 + 1e-12))."""
    functions = {"l1": F.l1_loss, "l2": F.mse_loss,
                 "charbonnier": lambda a, b: torch.sqrt((a - b).square() + 1e-12).mean()}
    if criterion not in functions:
        raise UserError(f"{owner}: criterion must be l1, l2 or charbonnier, got {criterion!r}")
    return functions[criterion]


def gaussian_window(size: int, sigma: float) -> Tensor:
    """A normalised (size, size) Gaussian, centred on the middle sample."""
    coords = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-coords.square() / (2 * sigma * sigma))
    g = g / g.sum()
    return torch.outer(g, g).float()


def cosine_penalty(x: Tensor, y: Tensor, cosim_lambda: float) -> Tensor:
    """``cosim_lambda * (1 - mean cosine similarity)`` of the pixels' RGB vectors: colour direction, not level."""
    return cosim_lambda * (1 - F.cosine_similarity(x, y, dim=1, eps=1e-20).mean())


@LOSS_REGISTRY.register()
class MSSIMLoss(nn.Module):
    """``1 - MS-SSIM`` over five scales (Gaussian window, halving by 2x2 average pooling), plus
    ``cosim_lambda`` times the cosine-similarity penalty when ``cosim``. Inputs are clamped to
    [1e-12, 1] for MS-SSIM (its per-scale terms are raised to fractional powers)."""

    float32 = True
    window: Tensor

    def __init__(self, window_size: int = 11, in_channels: int = 3, sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, l: float = 1.0, padding: Optional[int] = None,  # noqa: E741 (its key)
                 cosim: bool = True, cosim_lambda: float = 5.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if window_size < 1 or window_size % 2 == 0:
            raise UserError(f"MSSIMLoss: window_size must be odd and positive, got {window_size}")
        self.padding = window_size // 2 if padding is None else padding
        self.c1, self.c2 = (k1 * l) ** 2, (k2 * l) ** 2
        self.cosim, self.cosim_lambda, self.loss_weight = cosim, cosim_lambda, loss_weight
        self.register_buffer("window", gaussian_window(window_size, sigma).expand(in_channels, 1, -1, -1).clone(),
                             persistent=False)

    def _filter(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.window.to(x.dtype), padding=self.padding, groups=x.shape[1])

    def ssim_terms(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
        """Mean SSIM and mean contrast-structure term of one scale."""
        mu_x, mu_y = self._filter(x), self._filter(y)
        var_x = self._filter(x * x) - mu_x * mu_x
        var_y = self._filter(y * y) - mu_y * mu_y
        cov = self._filter(x * y) - mu_x * mu_y
        luminance = (2 * mu_x * mu_y + self.c1) / (mu_x.square() + mu_y.square() + self.c1)
        cs = (2 * cov + self.c2) / (var_x + var_y + self.c2)
        return (luminance * cs).mean(), cs.mean()

    def msssim(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = x.clamp(1e-12, 1), y.clamp(1e-12, 1)
        value = torch.ones((), device=x.device, dtype=x.dtype)
        for scale, weight in enumerate(MS_WEIGHTS):
            ssim, cs = self.ssim_terms(x, y)
            if scale == len(MS_WEIGHTS) - 1:
                value = value * ssim ** weight
            else:
                value = value * cs ** weight
                pad = [s % 2 for s in x.shape[2:]]
                x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
        return value

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        loss = 1 - self.msssim(x, y)
        if self.cosim:
            loss = loss + cosine_penalty(x, y, self.cosim_lambda)
        return self.loss_weight * loss


@LOSS_REGISTRY.register()
class MSSSIML1Loss(nn.Module):
    """Zhao et al.'s mix ``alpha * (1 - MS-SSIM) + (1 - alpha) * G(|x - y|) / data_range`` computed at full
    resolution: the scales are Gaussian windows of ``gaussian_sigmas`` (the luminance term from the widest),
    the L1 (Charbonnier) error is smoothed with the widest one; borders are replicated."""

    float32 = True
    windows: Tensor

    def __init__(self, gaussian_sigmas: Optional[Sequence[float]] = None, data_range: float = 1.0,
                 k: Tuple[float, float] = (0.01, 0.03), alpha: float = 0.1, loss_weight: float = 1.0) -> None:
        super().__init__()
        sigmas = list(gaussian_sigmas) if gaussian_sigmas is not None else [0.1, 1.0, 2.0, 4.0, 8.0]
        if len(sigmas) != len(MS_WEIGHTS) or min(sigmas) <= 0:
            raise UserError(f"MSSSIML1Loss: gaussian_sigmas must be {len(MS_WEIGHTS)} positive numbers, got "
                            f"{sigmas}")
        self.data_range, self.alpha, self.loss_weight = data_range, alpha, loss_weight
        self.c1, self.c2 = (k[0] * data_range) ** 2, (k[1] * data_range) ** 2
        self.pad = int(2 * sigmas[-1])
        size = int(4 * sigmas[-1] + 1)
        self.register_buffer("windows", torch.stack([gaussian_window(size, s) for s in sigmas])[:, None],
                             persistent=False)

    def _filter(self, x: Tensor, windows: Tensor) -> Tensor:
        """Each channel of ``x`` filtered by each window: (n, c, h, w) -> (n, scales, c, h, w)."""
        n, c, h, w = x.shape
        padded = F.pad(x.reshape(n * c, 1, h, w), (self.pad,) * 4, mode="replicate")
        return F.conv2d(padded, windows.to(x.dtype)).reshape(n, c, -1, h, w).transpose(1, 2)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        mu_x, mu_y = self._filter(x, self.windows), self._filter(y, self.windows)
        var_x = self._filter(x * x, self.windows) - mu_x.square()
        var_y = self._filter(y * y, self.windows) - mu_y.square()
        cov = self._filter(x * y, self.windows) - mu_x * mu_y
        luminance = (2 * mu_x[:, -1] * mu_y[:, -1] + self.c1) / (mu_x[:, -1].square() + mu_y[:, -1].square() +
                                                                 self.c1)
        cs = F.relu((2 * cov + self.c2) / (var_x + var_y + self.c2))
        exponents = torch.tensor(MS_WEIGHTS, device=x.device, dtype=x.dtype).view(1, -1, 1, 1, 1)
        msssim = luminance.prod(dim=1) * (cs ** exponents).prod(dim=1).prod(dim=1)  # per pixel, over channels
        l1 = torch.sqrt((x - y).square() + 1e-12)
        smoothed_l1 = self._filter(l1, self.windows[-1:])[:, 0].mean(dim=1)
        mix = self.alpha * (1 - msssim) + (1 - self.alpha) * smoothed_l1 / self.data_range
        return self.loss_weight * mix.mean()


# ---------------------------------------------------------------------------------------------------- HSLuv

# sRGB (D65) <-> XYZ and the CIELUV constants of the HSLuv reference implementation (hsluv.org).
_XYZ_TO_RGB = ((3.240969941904521, -1.537383177570093, -0.498610760293),
               (-0.96924363628087, 1.87596750150772, 0.041555057407175),
               (0.055630079696993, -0.20397695888897, 1.056971514242878))
_RGB_TO_XYZ = ((0.41239079926595, 0.35758433938387, 0.18048078840183),
               (0.21263900587151, 0.71516867876775, 0.072192315360733),
               (0.019330818715591, 0.11919477979462, 0.95053215224966))
_REF_U, _REF_V = 0.19783000664283, 0.46831999493879
_KAPPA, _EPSILON = 903.2962962, 0.0088564516


def _max_chroma(lightness: Tensor, hue_rad: Tensor) -> Tensor:
    """The largest CIELUV chroma inside the sRGB gamut at (L, H): the nearest of the six gamut lines along H."""
    sub1 = (lightness + 16) ** 3 / 1560896
    sub2 = torch.where(sub1 > _EPSILON, sub1, lightness / _KAPPA)
    sin, cos = torch.sin(hue_rad), torch.cos(hue_rad)
    best = torch.full_like(lightness, math.inf)
    for m1, m2, m3 in _XYZ_TO_RGB:
        for t in (0, 1):
            top1 = (284517 * m1 - 94839 * m3) * sub2
            top2 = (838422 * m3 + 769860 * m2 + 731718 * m1) * lightness * sub2 - 769860 * t * lightness
            bottom = (632260 * m3 - 126452 * m2) * sub2 + 126452 * t
            length = (top2 / bottom) / (sin - (top1 / bottom) * cos)
            best = torch.where(length >= 0, torch.minimum(best, length), best)
    return best


def rgb_to_hsluv(rgb: Tensor) -> Tensor:
    """(n, 3, h, w) sRGB in [0, 1] -> HSLuv (hue in degrees [0, 360), saturation and lightness in [0, 100])."""
    rgb = rgb.clamp(0, 1)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(1e-12) ** 2.4, rgb / 12.92)
    x, y, z = torch.einsum("ij,njhw->inhw", torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device), linear)
    lightness = torch.where(y <= _EPSILON, y * _KAPPA, 116 * y.clamp_min(_EPSILON) ** (1 / 3) - 16)
    denominator = x + 15 * y + 3 * z
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    u = torch.where(denominator > 0, 13 * lightness * (4 * x / safe - _REF_U), torch.zeros_like(x))
    v = torch.where(denominator > 0, 13 * lightness * (9 * y / safe - _REF_V), torch.zeros_like(y))
    chroma_sq = u.square() + v.square()
    grey = chroma_sq < 1e-16
    chroma = torch.sqrt(torch.where(grey, torch.ones_like(chroma_sq), chroma_sq))
    hue_rad = torch.atan2(torch.where(grey, torch.zeros_like(v), v), torch.where(grey, torch.ones_like(u), u))
    hue = torch.where(grey, torch.zeros_like(hue_rad), torch.remainder(torch.rad2deg(hue_rad), 360))
    limit = _max_chroma(lightness, hue_rad)
    extreme = (lightness > 99.9999999) | (lightness < 1e-8) | grey
    saturation = torch.where(extreme, torch.zeros_like(chroma),
                             chroma / torch.where(extreme, torch.ones_like(limit), limit) * 100)
    lightness = torch.where(lightness > 99.9999999, torch.full_like(lightness, 100.0), lightness.clamp_min(0))
    return torch.stack([hue, saturation, lightness], dim=1)


@LOSS_REGISTRY.register()
class HSLuvLoss(nn.Module):
    """Distance in HSLuv (perceptually uniform hue, saturation, lightness), each normalised to [0, 1]:
    the hue term is the shortest way round the circle (times 2), 0 between two greys (saturation < 0.1) or
    two near-black / near-white pixels (lightness < 0.1 / > 0.9), the larger saturation between a grey and
    a colour; saturation and lightness use ``criterion``. ``downscale_factor`` > 1 compares average-pooled
    images (cheaper, colour only)."""

    float32 = True

    def __init__(self, hue_weight: float = 1 / 3, saturation_weight: float = 1 / 3, lightness_weight: float = 1 / 3,
                 criterion: Criterion = "l1", downscale_factor: int = 1, loss_weight: float = 1.0) -> None:
        super().__init__()
        if downscale_factor < 1:
            raise UserError(f"HSLuvLoss: downscale_factor must be at least 1, got {downscale_factor}")
        self.weights = (hue_weight, saturation_weight, lightness_weight)
        self.criterion = criterion_fn("HSLuvLoss", criterion)
        self.downscale_factor, self.loss_weight = downscale_factor, loss_weight

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if self.downscale_factor > 1:
            x, y = F.avg_pool2d(x, self.downscale_factor), F.avg_pool2d(y, self.downscale_factor)
        hx, sx, lx = (rgb_to_hsluv(x) / torch.tensor([360.0, 100.0, 100.0], device=x.device).view(1, 3, 1, 1)).unbind(1)
        hy, sy, ly = (rgb_to_hsluv(y) / torch.tensor([360.0, 100.0, 100.0], device=y.device).view(1, 3, 1, 1)).unbind(1)
        eps = 0.1
        distance = (hx - hy).abs()
        hue = torch.minimum(distance, 1 - distance) * 2
        grey_x, grey_y = sx < eps, sy < eps
        hue = torch.where(grey_x & grey_y, torch.zeros_like(hue), hue)
        hue = torch.where(grey_x ^ grey_y, torch.maximum(sx, sy), hue)
        hue = torch.where(((lx < eps) & (ly < eps)) | ((lx > 1 - eps) & (ly > 1 - eps)), torch.zeros_like(hue), hue)
        wh, ws, wl = self.weights
        loss = wh * hue.mean() + ws * self.criterion(sx, sy) + wl * self.criterion(lx, ly)
        return self.loss_weight * loss


# ---------------------------------------------------------------------------------------------------- LDL

def local_variance(residual: Tensor, ksize: int) -> Tensor:
    """Unbiased variance of each pixel's ksize x ksize neighbourhood (reflected borders)."""
    pad = (ksize - 1) // 2
    padded = F.pad(residual, [pad] * 4, mode="reflect")
    windows = padded.unfold(2, ksize, 1).unfold(3, ksize, 1)
    return torch.var(windows, dim=(-1, -2), unbiased=True)


def artifact_map(gt: Tensor, output: Tensor, output_ema: Tensor, ksize: int = 7) -> Tensor:
    """LDL's per-pixel artefact weight: the patch's residual variance ** (1/5) times the local residual
    variance, 0 where the EMA model is further from the GT than the trained one (a detail, not an artefact)."""
    residual_ema = (gt - output_ema).abs().sum(1, keepdim=True)
    residual = (gt - output).abs().sum(1, keepdim=True)
    patch = torch.var(residual, dim=(-1, -2, -3), keepdim=True) ** (1 / 5)
    weight = patch * local_variance(residual, ksize)
    return torch.where(residual < residual_ema, torch.zeros_like(weight), weight)


def needs_ema(options: Options, component: Component, path: Path_, problems: List[Problem]) -> None:
    """LDL's rule: its artefact map compares with the EMA generator's output, so training keeps an EMA."""
    if options.train is None or not keys_valid(problems, path + ("loss_weight",), ("train", "ema_decay")):
        return
    if options.train.ema_decay == 0 and loss_weight(component) != 0:
        problems.append(Problem(path + ("type",), f"{component.type} compares with the EMA generator's output: set "
                                                  "train.ema_decay (e.g. 0.999)"))


@LOSS_REGISTRY.register()
class LDLLoss(nn.Module):
    """Locally discriminative learning (Liang et al., "Details or Artifacts", CVPR 2022):
    ``criterion(map * output, map * gt)`` with the artefact map of :func:`artifact_map`; the map compares
    with the output of the EMA generator (``train.ema_decay``) and carries no gradient of its own."""

    float32 = True
    option_spec = LossSpec(role="artifact", rule=needs_ema)  # called with (output, EMA output, gt)

    def __init__(self, criterion: Criterion = "l1", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.criterion = criterion_fn("LDLLoss", criterion)
        self.loss_weight = loss_weight

    def forward(self, output: Tensor, output_ema: Tensor, gt: Tensor) -> Tensor:
        weight = artifact_map(gt, output, output_ema).detach()
        return self.loss_weight * self.criterion(weight * output, weight * gt)


# ---------------------------------------------------------------------------------------------------- the rest

@LOSS_REGISTRY.register()
class FFLoss(nn.Module):
    """Focal frequency loss (Jiang et al., ICCV 2021): squared distance of the orthonormal 2-D spectra of
    ``patch_factor`` x ``patch_factor`` patches, each frequency weighted by its own distance ** ``alpha``
    (normalised to [0, 1] per spectrum, or per batch with ``batch_matrix``; ``log_matrix``: log(1 + w) first;
    ``ave_spectrum``: compare the batch-mean spectra). Times 50, the scale traiNNer-redux gives it, so its
    recommended weights carry over."""

    float32 = True

    def __init__(self, alpha: float = 1.0, patch_factor: int = 1, ave_spectrum: bool = True, log_matrix: bool = False,
                 batch_matrix: bool = False, loss_weight: float = 1.0) -> None:
        super().__init__()
        if patch_factor < 1:
            raise UserError(f"FFLoss: patch_factor must be at least 1, got {patch_factor}")
        self.alpha, self.patch_factor, self.ave_spectrum = alpha, patch_factor, ave_spectrum
        self.log_matrix, self.batch_matrix, self.loss_weight = log_matrix, batch_matrix, loss_weight

    def spectrum(self, x: Tensor) -> Tensor:
        """(n, c, h, w) -> (n, patches, c, h/p, w/p) complex spectra."""
        n, c, h, w = x.shape
        p = self.patch_factor
        if h % p or w % p:
            raise ValueError(f"FFLoss: patch_factor {p} does not divide the image size {h}x{w}")
        patches = x.reshape(n, c, p, h // p, p, w // p).permute(0, 2, 4, 1, 3, 5).reshape(n, p * p, c, h // p, w // p)
        return torch.fft.fft2(patches.float(), norm="ortho")

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred_freq, target_freq = self.spectrum(pred), self.spectrum(target)
        if self.ave_spectrum:
            pred_freq, target_freq = pred_freq.mean(0, keepdim=True), target_freq.mean(0, keepdim=True)
        distance = (pred_freq - target_freq).abs().square()
        with torch.no_grad():
            weight = distance.sqrt() ** self.alpha
            if self.log_matrix:
                weight = torch.log(weight + 1.0)
            top = weight.max() if self.batch_matrix else weight.amax(dim=(-1, -2), keepdim=True)
            weight = torch.nan_to_num(weight / top, nan=0.0).clamp(0, 1)
        return self.loss_weight * 50 * (weight * distance).mean()


@LOSS_REGISTRY.register()
class CosimLoss(nn.Module):
    """``cosim_lambda * (1 - mean cosine similarity)`` between the pixels' RGB vectors (inputs clamped to
    [1e-12, 1]): penalises colour shifts whatever the brightness."""

    float32 = True

    def __init__(self, cosim_lambda: float = 5.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.cosim_lambda, self.loss_weight = cosim_lambda, loss_weight

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.loss_weight * cosine_penalty(x.clamp(1e-12, 1), y.clamp(1e-12, 1), self.cosim_lambda)


@LOSS_REGISTRY.register()
class SobelEdgeLoss(nn.Module):
    """Mean squared difference of the Sobel gradients (x and y, kernels / 4, zero borders) of the luma
    (0.299 R + 0.587 G + 0.114 B): edges in the same places with the same strength."""

    float32 = True
    kernels: Tensor
    luma: Tensor

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
        self.register_buffer("kernels", torch.stack([sobel_x, sobel_x.T])[:, None], persistent=False)
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)

    def gradients(self, x: Tensor) -> Tensor:
        return F.conv2d((x * self.luma.to(x.dtype)).sum(1, keepdim=True), self.kernels.to(x.dtype), padding=1)

    def forward(self, pred: Tensor, gt: Tensor) -> Tensor:
        return self.loss_weight * F.mse_loss(self.gradients(pred), self.gradients(gt))


# ---------------------------------------------------------------------------------------------------- FLIP

# LDR-FLIP (Andersson et al., HPG 2020; NVIDIA's reference implementation): D65 white, sRGB primaries.
_D65 = (0.950428545, 1.0, 1.088900371)
_LINRGB_TO_XYZ = ((10135552 / 24577794, 8788810 / 24577794, 4435075 / 24577794),
                  (2613072 / 12288897, 8788810 / 12288897, 887015 / 12288897),
                  (1425312 / 73733382, 8788810 / 73733382, 70074185 / 73733382))
# Contrast sensitivity of the achromatic, red-green and blue-yellow channels: a1, b1, a2, b2 of
# a1 sqrt(pi / b1) exp(-pi^2 d^2 / b1) + a2 sqrt(pi / b2) exp(-pi^2 d^2 / b2), d in degrees.
_CSF = ((1.0, 0.0047, 0.0, 1e-5), (1.0, 0.0053, 0.0, 1e-5), (34.1, 0.04, 13.5, 0.025))
_QC, _QF, _PC, _PT, _FLIP_EPS = 0.7, 0.5, 0.4, 0.95, 1e-15


def _mix(matrix: Tensor, x: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", matrix.to(x), x)


def srgb_to_linear(x: Tensor) -> Tensor:
    return torch.where(x > 0.04045, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)


def _white(x: Tensor) -> Tensor:
    return torch.tensor(_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)


def linear_to_lab(rgb: Tensor) -> Tensor:
    """Linear sRGB -> CIELAB (D65)."""
    t = _mix(torch.tensor(_LINRGB_TO_XYZ, dtype=torch.float64), rgb) / _white(rgb)
    delta = 6 / 29
    f = torch.where(t > delta ** 3, t.clamp_min(delta ** 3) ** (1 / 3), t / (3 * delta ** 2) + 4 / 29)
    return torch.cat([116 * f[:, 1:2] - 16, 500 * (f[:, 0:1] - f[:, 1:2]), 200 * (f[:, 1:2] - f[:, 2:3])], 1)


def hunt_adjusted(lab: Tensor) -> Tensor:
    """Chroma scaled by lightness (Hunt effect): (L, L a / 100, L b / 100)."""
    return torch.cat([lab[:, :1], lab[:, 1:] * lab[:, :1] / 100], 1)


def hyab(a: Tensor, b: Tensor) -> Tensor:
    """|dL| (kept from 0 for gradients) plus the Euclidean distance of the chroma."""
    delta = a - b
    return torch.sqrt(delta[:, :1].square().clamp_min(_FLIP_EPS)) + torch.linalg.vector_norm(delta[:, 1:], dim=1,
                                                                                              keepdim=True)


def _grid(radius: int) -> Tuple[Tensor, Tensor]:
    coords = torch.arange(-radius, radius + 1, dtype=torch.float64)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return x, y


@LOSS_REGISTRY.register()
class FLIPLoss(nn.Module):
    """NVIDIA's LDR-FLIP (Andersson et al., "FLIP: A Difference Evaluator for Alternating Images", HPG 2020),
    the mean of its per-pixel error in [0, 1]: colour through contrast-sensitivity filters in YCxCz, the
    Hunt-adjusted HyAB distance in CIELAB compressed so that green vs blue is 1; features (edges and points of
    the luminance, Gaussian-derivative filters) raise the colour error to the power ``1 - feature error``.
    ``pixels_per_degree``: the viewer (default: a 0.7 m wide 4K screen at 0.7 m)."""

    float32 = True
    csf: Tensor
    features: Tensor
    option_spec = LossSpec(refused=MappingProxyType({
        "warmup_iter": "'warmup_iter' does nothing in traiNNer-redux's FLIP loss either; remove it"}))

    def __init__(self, pixels_per_degree: float = 3840 * math.pi / 180, loss_weight: float = 1.0) -> None:
        super().__init__()
        if pixels_per_degree <= 0:
            raise UserError(f"FLIPLoss: pixels_per_degree must be positive, got {pixels_per_degree}")
        self.loss_weight = loss_weight
        largest = max(b for _, b1, _, b2 in _CSF for b in (b1, b2))
        self.csf_radius = int(math.ceil(3 * math.sqrt(largest / (2 * math.pi ** 2)) * pixels_per_degree))
        x, y = _grid(self.csf_radius)
        d2 = (x.square() + y.square()) / pixels_per_degree ** 2
        kernels = []
        for a1, b1, a2, b2 in _CSF:
            g = (a1 * math.sqrt(math.pi / b1) * torch.exp(-math.pi ** 2 * d2 / b1) +
                 a2 * math.sqrt(math.pi / b2) * torch.exp(-math.pi ** 2 * d2 / b2))
            kernels.append(g / g.sum())
        self.register_buffer("csf", torch.stack(kernels)[:, None].float(), persistent=False)
        sd = 0.5 * 0.082 * pixels_per_degree  # half the peak-to-trough width of human edge detection
        self.feature_radius = int(math.ceil(3 * sd))
        x, y = _grid(self.feature_radius)
        g = torch.exp(-(x.square() + y.square()) / (2 * sd * sd))
        edge, point = -x * g, (x.square() / (sd * sd) - 1) * g
        self.register_buffer("features", torch.stack([self._balanced(edge), self._balanced(point)])[:, None].float(),
                             persistent=False)
        green, blue = torch.eye(3, dtype=torch.float64)[1:].view(2, 3, 1, 1).unbind(0)
        self.cmax = float(hyab(hunt_adjusted(linear_to_lab(green[None])), hunt_adjusted(linear_to_lab(blue[None])))
                          ** _QC)

    @staticmethod
    def _balanced(kernel: Tensor) -> Tensor:
        """Positive weights scaled to sum 1, negative ones to sum -1."""
        return torch.where(kernel < 0, kernel / -kernel[kernel < 0].sum(), kernel / kernel[kernel > 0].sum())

    def ycxcz(self, srgb: Tensor) -> Tensor:
        xyz = _mix(torch.tensor(_LINRGB_TO_XYZ, dtype=torch.float64), srgb_to_linear(srgb.clamp(0, 1))) / _white(srgb)
        return torch.cat([116 * xyz[:, 1:2] - 16, 500 * (xyz[:, 0:1] - xyz[:, 1:2]), 200 * (xyz[:, 1:2] - xyz[:, 2:3])],
                         1)

    def colour(self, ycxcz: Tensor) -> Tensor:
        """Filtered by the contrast sensitivity of each channel, back to linear RGB clamped to the gamut, then
        Hunt-adjusted CIELAB."""
        r = self.csf_radius
        filtered = F.conv2d(F.pad(ycxcz, (r, r, r, r), mode="replicate"), self.csf.to(ycxcz), groups=3)
        y = (filtered[:, :1] + 16) / 116
        xyz = torch.cat([y + filtered[:, 1:2] / 500, y, y - filtered[:, 2:3] / 200], 1) * _white(filtered)
        rgb = _mix(torch.linalg.inv(torch.tensor(_LINRGB_TO_XYZ, dtype=torch.float64)), xyz).clamp(0, 1)
        return hunt_adjusted(linear_to_lab(rgb))

    def feature_responses(self, ycxcz: Tensor) -> Tuple[Tensor, Tensor]:
        """Magnitudes of the edge and point responses (x and y filters) of the normalised luminance."""
        r = self.feature_radius
        luminance = F.pad((ycxcz[:, :1] + 16) / 116, (r, r, r, r), mode="replicate")
        kernels = torch.cat([self.features, self.features.transpose(2, 3)]).to(luminance)  # ex, px, ey, py
        ex, px, ey, py = F.conv2d(luminance, kernels).unbind(1)
        return torch.hypot(ex, ey), torch.hypot(px, py)

    def error_map(self, test: Tensor, reference: Tensor) -> Tensor:
        test, reference = self.ycxcz(test), self.ycxcz(reference)
        colour = hyab(self.colour(reference), self.colour(test)) ** _QC
        pccmax = _PC * self.cmax
        colour = torch.where(colour < pccmax, _PT / pccmax * colour,
                             _PT + (colour - pccmax) / (self.cmax - pccmax) * (1 - _PT))
        (edges_r, points_r), (edges_t, points_t) = self.feature_responses(reference), self.feature_responses(test)
        feature = torch.maximum((edges_r - edges_t).abs(), (points_r - points_t).abs()).clamp_min(_FLIP_EPS)
        feature = (feature / math.sqrt(2)) ** _QF
        return colour[:, 0] ** (1 - feature)

    def forward(self, test: Tensor, reference: Tensor) -> Tensor:
        return self.loss_weight * self.error_map(test, reference).mean()
