"""Real-ESRGAN's second-order degradation, applied to a batch on the training device.

From clean GT crops and the per-sample kernels :class:`~framework.data.realesrgan.RealESRGANDataset` drew,
:class:`Degradation` makes the LR inputs as Real-ESRGAN's ``RealESRGANModel.feed_data`` does (Wang et al.,
2021, figure 2): blur, random resize, Gaussian or Poisson noise, JPEG; the same again with the ``2`` keys
(the blur with ``second_blur_prob``); then the resize to the LR size with the final sinc filter and a last
JPEG, in random order; rounded to 8 bits. The USM sharpening of the GT (:func:`usm_sharp`) is here too.

Every random draw comes from the two generators passed in (``cpu``: the per-batch choices, drawn without a
device sync; ``device``: the noise tensors), so a batch's degradation depends only on how those were seeded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Literal, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..errors import OptionError, check_range
from ..schema import Path_, Problem, opt
from .jpeg import jpeg_compress
from .kernels import choice, uniform

EQUAL = (1.0, 1.0, 1.0)


ResizeModes = Tuple[Literal["area", "bilinear", "bicubic", "nearest-exact", "lanczos"], ...]
RESIZE_MODES = ("area", "bilinear", "bicubic")  # Real-ESRGAN's, each as likely


@dataclass(frozen=True, kw_only=True)
class DegradationOptions:
    """The ``degradation`` section (RealESRNetModel / RealESRGANModel): the settings of :class:`Degradation`
    and of the model's use of it (Real-ESRGAN's keys, which its files write at the top level). The blur
    kernels are the dataset's keys (`datasets.train`, RealESRGANDataset)."""

    gt_size: Optional[int] = opt(None, doc="The GT patch size the degraded crops are cut to; none = "
                                           "`datasets.train.gt_size` (they must agree when both are set).", min=1)
    queue_size: int = opt(180, doc="Training-pair pool: degraded pairs are kept and shuffled across batches so "
                                   "one batch mixes degradations; a multiple of the loader batch "
                                   "(`batch_size_per_gpu` x `accumulate_steps`); 0 = no pool. Saved in the `.pt` "
                                   "(8-bit: queue_size x 3 x (gt_size^2 + (gt_size/scale)^2) bytes).", min=0)
    gt_usm: bool = opt(True, doc="RealESRNetModel: sharpen the GT (unsharp masking) before degrading it; the "
                                 "loss then compares with the sharpened GT.")
    l1_gt_usm: bool = opt(True, doc="RealESRGANModel: the pixel loss compares with the sharpened GT.")
    percep_gt_usm: bool = opt(True, doc="RealESRGANModel: the perceptual loss compares with the sharpened GT.")
    gan_gt_usm: bool = opt(False, doc="RealESRGANModel: the discriminator sees the sharpened GT as real.")
    high_order_degradation: bool = opt(True, doc="Real-ESRGAN's switch: `true` synthesises the LR inputs from "
                                                 "GT images (RealESRGANDataset); `false` trains on stored LR/HR "
                                                 "pairs as they are (RealESRGANPairedDataset, Real-ESRGAN's "
                                                 "fine-tuning recipe: no degradation added, no pool; the GT is "
                                                 "sharpened where `l1_gt_usm`, `percep_gt_usm`, `gan_gt_usm` "
                                                 "say).")
    lq_usm: bool = opt(False, doc="traiNNer-redux's LQ sharpening: unsharp masking of the image before it is "
                                  "degraded, with a radius drawn per batch from `lq_usm_radius_range`.")
    lq_usm_radius_range: Tuple[int, int] = opt((1, 25), doc="With `lq_usm`: the range of the unsharp mask's "
                                                            "Gaussian radius (pixels).")
    blur_prob: float = opt(1.0, doc="First stage: chance of the first blur (`kernel1`); Real-ESRGAN always "
                                    "blurs (1).", min=0.0, max=1.0)
    resize_prob: Tuple[float, float, float] = opt((0.2, 0.7, 0.1), doc="First stage: chances of resizing up, "
                                                                       "down, or keeping the size.")
    resize_range: Tuple[float, float] = opt((0.15, 1.5), doc="First stage: resize factor range (down from the low "
                                                             "end to 1, up from 1 to the high end).")
    resize_mode_list: ResizeModes = opt(
        RESIZE_MODES, doc="First stage: the resize modes drawn from (`area`, `bilinear`, "
                                             "`bicubic`, `nearest-exact`, `lanczos`: Lanczos-3, antialiased when "
                                             "shrinking).")
    resize_mode_prob: Tuple[float, ...] = opt((1.0, 1.0, 1.0), doc="First stage: the weight of each mode of "
                                                                   "`resize_mode_list` (normalised).")
    gaussian_noise_prob: float = opt(0.5, doc="First stage: chance of Gaussian noise (else Poisson noise).",
                                     min=0.0, max=1.0)
    noise_range: Tuple[float, float] = opt((1.0, 30.0), doc="First stage: Gaussian noise sigma range, in 8-bit "
                                                            "levels.")
    poisson_scale_range: Tuple[float, float] = opt((0.05, 3.0), doc="First stage: Poisson noise scale range.")
    gray_noise_prob: float = opt(0.4, doc="First stage: chance that the noise is gray (the same in every "
                                          "channel).", min=0.0, max=1.0)
    jpeg_range: Tuple[float, float] = opt((30.0, 95.0), doc="First stage: JPEG quality range (one quality per "
                                                            "image).")
    jpeg_prob: float = opt(1.0, doc="First stage: chance of the JPEG compression; Real-ESRGAN always compresses "
                                    "(1).", min=0.0, max=1.0)
    second_blur_prob: float = opt(0.8, doc="Second stage: chance of the second blur (`kernel2`).", min=0.0,
                                  max=1.0)
    resize_prob2: Tuple[float, float, float] = opt((0.3, 0.4, 0.3), doc="Second stage: as `resize_prob`.")
    resize_range2: Tuple[float, float] = opt((0.3, 1.2), doc="Second stage: as `resize_range` (relative to the "
                                                             "LR size).")
    resize_mode_list2: ResizeModes = opt(RESIZE_MODES, doc="Second stage: as `resize_mode_list`.")
    resize_mode_prob2: Tuple[float, ...] = opt((1.0, 1.0, 1.0), doc="Second stage: as `resize_mode_prob`.")
    gaussian_noise_prob2: float = opt(0.5, doc="Second stage: as `gaussian_noise_prob`.", min=0.0, max=1.0)
    noise_range2: Tuple[float, float] = opt((1.0, 25.0), doc="Second stage: as `noise_range`.")
    poisson_scale_range2: Tuple[float, float] = opt((0.05, 2.5), doc="Second stage: as `poisson_scale_range`.")
    gray_noise_prob2: float = opt(0.4, doc="Second stage: as `gray_noise_prob`.", min=0.0, max=1.0)
    jpeg_range2: Tuple[float, float] = opt((30.0, 95.0), doc="Second stage: as `jpeg_range` (the last JPEG).")
    jpeg_prob2: float = opt(1.0, doc="Second stage: as `jpeg_prob` (the last JPEG).", min=0.0, max=1.0)
    resize_mode_list3: ResizeModes = opt(RESIZE_MODES, doc="The final resize to the LR size: as `resize_mode_list`.")
    resize_mode_prob3: Tuple[float, ...] = opt((1.0, 1.0, 1.0), doc="The final resize: as `resize_mode_prob`.")

Jpeg = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _pad_borders(img: torch.Tensor, pad: int) -> torch.Tensor:
    """``pad`` pixels on each side: reflected, or replicated where the image is not larger than ``pad`` (tiny
    crops, where Real-ESRGAN's reflection would fail)."""
    h, w = img.shape[-2:]
    return F.pad(img, (pad, pad, pad, pad), mode="reflect" if pad < min(h, w) else "replicate")


def filter2d(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each image of ``img`` (B, C, H, W) convolved with its own kernel (B, k, k) (or one (k, k) for all), over
    :func:`_pad_borders`, so the output keeps the input's size."""
    b, c, h, w = img.shape
    k = kernel.shape[-1]
    pad = k // 2
    padded = _pad_borders(img, pad)
    if kernel.dim() == 2:
        weight = kernel.to(img.dtype).expand(c, 1, k, k)
        return F.conv2d(padded, weight, groups=c)
    weight = kernel.to(img.dtype).repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, k, k)
    out = F.conv2d(padded.reshape(1, b * c, h + 2 * pad, w + 2 * pad), weight, groups=b * c)
    return out.view(b, c, h, w)


def separable_blur(img: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """:func:`filter2d` with the kernel ``outer(g, g)`` (the same borders), as two 1-D passes: 2k instead of
    k^2 multiplications per pixel (USM's 101 x 101 Gaussian)."""
    b, c, h, w = img.shape
    k = g.shape[0]
    padded = _pad_borders(img, k // 2)
    g = g.to(img.dtype)
    rows = F.conv2d(padded.reshape(b * c, 1, *padded.shape[-2:]), g.view(1, 1, 1, k))
    return F.conv2d(rows, g.view(1, 1, k, 1)).view(b, c, h, w)


def gaussian_kernel_1d(size: int, sigma: float = 0.0) -> torch.Tensor:
    """OpenCV's ``getGaussianKernel``: sigma 0 means ``0.3 * ((size - 1) / 2 - 1) + 0.8``."""
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).float()


def usm_sharp(img: torch.Tensor, weight: float = 0.5, threshold: float = 10, radius: int = 50) -> torch.Tensor:
    """Unsharp masking as Real-ESRGAN sharpens its GT: ``img + weight * (img - blur)``, clamped, blended in
    where the detail exceeds ``threshold`` (in 8-bit levels) through a soft (blurred) mask."""
    g = gaussian_kernel_1d(radius * 2 + 1).to(img.device)
    blur = separable_blur(img, g)
    residual = img - blur
    mask = (residual.abs() * 255 > threshold).to(img.dtype)
    soft_mask = separable_blur(mask, g)
    sharp = (img + weight * residual).clamp(0, 1)
    return soft_mask * sharp + (1 - soft_mask) * img


def _per_sample(gen: torch.Generator, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    """``n`` uniform draws in [low, high] as a (n, 1, 1, 1) tensor on ``device`` (drawn on the CPU)."""
    draws = torch.rand(n, generator=gen, dtype=torch.float64) * (high - low) + low
    return draws.float().view(n, 1, 1, 1).to(device)


def _gray_choice(gen: torch.Generator, n: int, prob: float, device: torch.device) -> torch.Tensor:
    """Per sample 1.0 (gray noise) with ``prob``, else 0.0, as (n, 1, 1, 1)."""
    return (torch.rand(n, generator=gen, dtype=torch.float64) < prob).float().view(n, 1, 1, 1).to(device)


def gaussian_noise(img: torch.Tensor, sigma_range: Sequence[float], gray_prob: float, cpu: torch.Generator,
                   device_gen: torch.Generator) -> torch.Tensor:
    """The noise only (not added): per sample a sigma (in 8-bit levels) uniform in ``sigma_range``, and with
    ``gray_prob`` one noise plane shared by the three channels (luminance noise) instead of colour noise."""
    b, c, h, w = img.shape
    sigma = _per_sample(cpu, b, sigma_range[0], sigma_range[1], img.device) / 255.0
    gray = _gray_choice(cpu, b, gray_prob, img.device)
    colour = torch.randn(img.shape, generator=device_gen, device=img.device, dtype=img.dtype)
    plane = torch.randn((b, 1, h, w), generator=device_gen, device=img.device, dtype=img.dtype)
    return (gray * plane + (1 - gray) * colour) * sigma


def _levels(img: torch.Tensor) -> torch.Tensor:
    """Per image, the number of distinct 8-bit values rounded up to a power of two (Real-ESRGAN's Poisson
    normalisation), as (B, 1, 1, 1)."""
    counts = [len(torch.unique(img[i])) for i in range(img.shape[0])]
    return img.new_tensor([2 ** math.ceil(math.log2(n)) for n in counts]).view(-1, 1, 1, 1)


def _poisson(img: torch.Tensor, device_gen: torch.Generator) -> torch.Tensor:
    quantised = quantise(img)
    levels = _levels(quantised)
    return torch.poisson(quantised * levels, generator=device_gen) / levels - quantised


def poisson_noise(img: torch.Tensor, scale_range: Sequence[float], gray_prob: float, cpu: torch.Generator,
                  device_gen: torch.Generator) -> torch.Tensor:
    """The noise only: shot noise of the 8-bit image, scaled per sample by a factor uniform in
    ``scale_range``; with ``gray_prob`` the noise of the luminance (ITU-R 601) for all three channels."""
    b = img.shape[0]
    scale = _per_sample(cpu, b, scale_range[0], scale_range[1], img.device)
    gray = _gray_choice(cpu, b, gray_prob, img.device)
    noise = _poisson(img, device_gen)
    if bool(gray.any()):
        luma = (0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3])
        noise = gray * _poisson(luma, device_gen).expand_as(img) + (1 - gray) * noise
    return noise * scale


@dataclass(frozen=True)
class Stage:
    """One degradation stage's settings (Real-ESRGAN's keys without / with the suffix ``2``)."""

    resize_prob: Tuple[float, float, float]
    resize_range: Tuple[float, float]
    gaussian_noise_prob: float
    noise_range: Tuple[float, float]
    poisson_scale_range: Tuple[float, float]
    gray_noise_prob: float
    jpeg_range: Tuple[float, float]
    blur_prob: float = 1.0
    jpeg_prob: float = 1.0
    resize_mode_list: Tuple[str, ...] = RESIZE_MODES
    resize_mode_prob: Tuple[float, ...] = EQUAL


def happens(prob: float, cpu: torch.Generator) -> bool:
    """A step taken with chance ``prob``; a certain one draws nothing, so Real-ESRGAN's defaults keep its
    random stream."""
    return prob >= 1.0 or uniform(cpu, 0.0, 1.0) < prob


def _resize_factor(stage: Stage, cpu: torch.Generator) -> float:
    """Up (in [1, high]), down (in [low, 1]) or keep, chosen by ``resize_prob``."""
    kind = choice(cpu, stage.resize_prob)
    low, high = stage.resize_range
    return (uniform(cpu, 1.0, high), uniform(cpu, low, 1.0), 1.0)[kind]


def resize(img: torch.Tensor, size: Tuple[int, int], cpu: torch.Generator,
           modes: Sequence[str] = RESIZE_MODES, weights: Sequence[float] = EQUAL) -> torch.Tensor:
    """``img`` resized to ``size`` (H, W) by a mode drawn from ``modes`` with ``weights`` (Real-ESRGAN's: area,
    bilinear and bicubic, each as likely)."""
    mode = modes[choice(cpu, weights)]
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "lanczos":
        return lanczos_resize(img, size)
    if mode in ("area", "nearest-exact"):
        return F.interpolate(img, size=size, mode=mode)
    return F.interpolate(img, size=size, mode=mode, align_corners=False)


def _lanczos_matrix(n_in: int, n_out: int, like: torch.Tensor, a: int = 3) -> torch.Tensor:
    """(n_out, n_in) weights of Lanczos-``a`` resampling along one axis: pixel centres aligned, the kernel
    widened by the shrink factor when shrinking (antialiased, as PIL's), each row normalised to sum 1."""
    scale = n_out / n_in
    stretch = min(scale, 1.0)
    centres = (torch.arange(n_out, dtype=torch.float64) + 0.5) / scale - 0.5
    d = (torch.arange(n_in, dtype=torch.float64)[None, :] - centres[:, None]) * stretch
    w = torch.sinc(d) * torch.sinc(d / a) * (d.abs() < a)
    return (w / w.sum(dim=1, keepdim=True)).to(device=like.device, dtype=like.dtype)


def lanczos_resize(img: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``img`` (B, C, H, W) resized to ``size`` by separable Lanczos-3 resampling."""
    rows = _lanczos_matrix(img.shape[-2], size[0], img)
    cols = _lanczos_matrix(img.shape[-1], size[1], img)
    return torch.einsum("oh,bchw,pw->bcop", rows, img, cols)


def add_noise(img: torch.Tensor, stage: Stage, cpu: torch.Generator, device_gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise with ``gaussian_noise_prob``, else Poisson noise; clamped to [0, 1]."""
    if uniform(cpu, 0.0, 1.0) < stage.gaussian_noise_prob:
        noise = gaussian_noise(img, stage.noise_range, stage.gray_noise_prob, cpu, device_gen)
    else:
        noise = poisson_noise(img, stage.poisson_scale_range, stage.gray_noise_prob, cpu, device_gen)
    return (img + noise).clamp(0, 1)


def compress(img: torch.Tensor, stage: Stage, cpu: torch.Generator, jpeg: Jpeg) -> torch.Tensor:
    """JPEG (with ``jpeg_prob``) at a quality drawn per image, uniform in ``jpeg_range``."""
    if not happens(stage.jpeg_prob, cpu):
        return img
    quality = _per_sample(cpu, img.shape[0], *stage.jpeg_range, img.device).view(-1)
    return jpeg(img.clamp(0, 1), quality)


@dataclass(frozen=True)
class Degradation:
    """The whole pipeline for one ``scale``: :meth:`__call__` maps GT crops to their LR inputs."""

    scale: int
    first: Stage
    second: Stage
    second_blur_prob: float
    jpeg: Jpeg
    final_modes: Tuple[str, ...] = RESIZE_MODES
    final_prob: Tuple[float, ...] = EQUAL
    lq_usm_radius: Optional[Tuple[int, int]] = None  # traiNNer-redux's lq_usm: sharpen first, radius drawn

    def __call__(self, gt: torch.Tensor, kernel1: torch.Tensor, kernel2: torch.Tensor, sinc: torch.Tensor,
                 cpu: torch.Generator, device_gen: torch.Generator) -> torch.Tensor:
        h, w = gt.shape[-2:]
        lr_size = (h // self.scale, w // self.scale)
        out = gt
        if self.lq_usm_radius is not None:
            low, high = self.lq_usm_radius
            out = usm_sharp(out, radius=int(torch.randint(low, high + 1, (1,), generator=cpu)))
        # the first stage
        if happens(self.first.blur_prob, cpu):
            out = filter2d(out, kernel1)
        factor = _resize_factor(self.first, cpu)
        out = resize(out, (int(h * factor), int(w * factor)), cpu, self.first.resize_mode_list,
                     self.first.resize_mode_prob)
        out = add_noise(out, self.first, cpu, device_gen)
        out = compress(out, self.first, cpu, self.jpeg)
        # the second stage
        if uniform(cpu, 0.0, 1.0) < self.second_blur_prob:
            out = filter2d(out, kernel2)
        factor = _resize_factor(self.second, cpu)
        out = resize(out, (int(h / self.scale * factor), int(w / self.scale * factor)), cpu,
                     self.second.resize_mode_list, self.second.resize_mode_prob)
        out = add_noise(out, self.second, cpu, device_gen)
        # [resize to the LR size + sinc] and the last JPEG, in either order (Real-ESRGAN: other orders give
        # twisted lines)
        if uniform(cpu, 0.0, 1.0) < 0.5:
            out = filter2d(resize(out, lr_size, cpu, self.final_modes, self.final_prob), sinc)
            out = compress(out, self.second, cpu, self.jpeg)
        else:
            out = compress(out, self.second, cpu, self.jpeg)
            out = filter2d(resize(out, lr_size, cpu, self.final_modes, self.final_prob), sinc)
        return quantise(out)


def stage_from(opts: DegradationOptions, suffix: str) -> Stage:
    """One stage's keys (suffix ``""`` or ``"2"``), checked by :func:`degradation_problems`."""
    values = {name: getattr(opts, name + suffix) for name in (
        "resize_prob", "resize_range", "gaussian_noise_prob", "noise_range", "poisson_scale_range",
        "gray_noise_prob", "jpeg_range", "jpeg_prob", "resize_mode_list", "resize_mode_prob")}
    values["blur_prob"] = opts.blur_prob if suffix == "" else 1.0  # the second: Degradation.second_blur_prob
    return Stage(**values)


def degradation_problems(opts: DegradationOptions) -> List[Problem]:
    """What the schema's types and bounds cannot say about a ``degradation`` section: ranges in order and
    inside their bounds, resize weights, one weight per resize mode."""
    problems: List[Problem] = []
    for suffix in ("", "2"):
        _stage_problems(opts, suffix, problems)
    _mode_problems(opts, "3", problems)
    if opts.lq_usm:
        _range_problem(("degradation", "lq_usm_radius_range"), opts.lq_usm_radius_range, 1, None, problems)
    return problems


def _stage_problems(opts: DegradationOptions, suffix: str, problems: List[Problem]) -> None:
    _mode_problems(opts, suffix, problems)
    for name, low, high in (("resize_range", 1e-6, None), ("noise_range", 0.0, None),
                            ("poisson_scale_range", 0.0, None), ("jpeg_range", 1.0, 100.0)):
        _range_problem(("degradation", name + suffix), getattr(opts, name + suffix), low, high, problems)
    lo, hi = getattr(opts, "resize_range" + suffix)
    if not lo <= 1.0 <= hi:
        problems.append(Problem(("degradation", "resize_range" + suffix), f"{[lo, hi]}: the range must contain 1 "
                                                                          "(down from low to 1, up from 1 to high)"))
    weights = getattr(opts, "resize_prob" + suffix)
    if any(p < 0 for p in weights) or not sum(weights) > 0:
        problems.append(Problem(("degradation", "resize_prob" + suffix), "three non-negative weights (up, down, "
                                                                         "keep), not all zero"))


def _range_problem(path: Path_, value: Sequence[float], low: float, high: Optional[float],
                   problems: List[Problem]) -> None:
    try:
        check_range(path, value, low, high)
    except OptionError as exc:
        problems.append(Problem(exc.path, exc.detail))


def _mode_problems(opts: DegradationOptions, suffix: str, problems: List[Problem]) -> None:
    """``resize_mode_list<suffix>`` and its weights ``resize_mode_prob<suffix>``: as many, not all zero."""
    modes, weights = getattr(opts, "resize_mode_list" + suffix), getattr(opts, "resize_mode_prob" + suffix)
    if not modes:
        problems.append(Problem(("degradation", "resize_mode_list" + suffix), "empty; name at least one resize mode"))
    elif len(weights) != len(modes) or any(p < 0 for p in weights) or not sum(weights) > 0:
        problems.append(Problem(("degradation", "resize_mode_prob" + suffix), f"{list(weights)}: one non-negative "
                                                                              "weight per mode of resize_mode_list"
                                                                              f"{suffix} ({len(modes)}), not all "
                                                                              "zero"))


def degradation_from(opts: DegradationOptions, scale: int) -> Degradation:
    """The pipeline of a ``degradation`` options section at ``scale``: what RealESRNetModel / RealESRGANModel
    train with and ``scripts/degrade_images.py`` makes validation sets with. A section the option checks did
    not see raises the first of its :func:`degradation_problems`."""
    problems = degradation_problems(opts)
    if problems:
        raise OptionError(problems[0].path, problems[0].message)
    usm = (int(opts.lq_usm_radius_range[0]), int(opts.lq_usm_radius_range[1])) if opts.lq_usm else None
    return Degradation(scale, stage_from(opts, ""), stage_from(opts, "2"), opts.second_blur_prob, jpeg_compress,
                       tuple(opts.resize_mode_list3), tuple(opts.resize_mode_prob3), usm)


def quantise(img: torch.Tensor) -> torch.Tensor:
    """Clamped and rounded to 8-bit levels, as an LR image file would hold it."""
    return torch.clamp((img * 255.0).round(), 0, 255) / 255.0


def paired_crop(gts: Sequence[torch.Tensor], lq: torch.Tensor, gt_size: int, scale: int,
                cpu: torch.Generator) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor]:
    """One random ``gt_size`` crop of the batch (the same window for every sample) and its LR window."""
    lq_size = gt_size // scale
    h, w = lq.shape[-2:]
    top = int(torch.randint(0, h - lq_size + 1, (1,), generator=cpu))
    left = int(torch.randint(0, w - lq_size + 1, (1,), generator=cpu))
    lq = lq[..., top:top + lq_size, left:left + lq_size]
    cropped = tuple(g[..., top * scale:(top + lq_size) * scale, left * scale:(left + lq_size) * scale] for g in gts)
    return cropped, lq
