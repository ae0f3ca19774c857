"""Blur kernels of Real-ESRGAN's degradation model, drawn per sample from an explicit ``torch.Generator``.

The kernel shapes are the paper's (Wang et al., "Real-ESRGAN", ICCVW 2021, section 3.1): on the grid
``x`` of a ``k x k`` kernel centred at 0, with the rotated covariance ``S = R diag(sx^2, sy^2) R^T`` and the
quadratic form ``q = x^T S^-1 x``,

- Gaussian (``iso``, ``aniso``): ``exp(-q / 2)``
- generalized Gaussian (``generalized_*``): ``exp(-q^beta / 2)``, shape ``beta`` from ``betag_range``
- plateau (``plateau_*``): ``1 / (1 + q^beta)``, shape ``beta`` from ``betap_range``

(``*_iso``: ``sx = sy``, no rotation), each normalised to sum 1; and the 2-D sinc (an ideal circular lowpass
with cutoff ``w`` in radians): ``w J1(w r) / (2 pi r)``, ``w^2 / (4 pi)`` at ``r = 0``, normalised. The
random choices (kernel type by ``kernel_prob``, size, sigmas, angle, beta, sinc cutoff) follow Real-ESRGAN's
public code; every draw comes from the generator passed in, so a sample's kernels depend only on its seed.

Computed in float64 and returned as float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
Shape = Literal["gaussian", "generalized", "plateau"]
SMALLEST_KERNEL = 7  # Real-ESRGAN draws kernel sizes 7, 9, ..., its blur_kernel_size (21)


def mesh_grid(size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(xx, yy)``: the column and row offsets from the centre of an odd ``size x size`` kernel."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return xx, yy


def quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """``x^T S^-1 x`` over the kernel grid, ``S`` the covariance with standard deviations ``sigma_x`` along the
    direction at angle ``theta`` (radians) and ``sigma_y`` across it."""
    xx, yy = mesh_grid(size)
    cos, sin = math.cos(theta), math.sin(theta)
    along = cos * xx + sin * yy  # coordinates in the rotated frame: S^-1 is diagonal there
    across = -sin * xx + cos * yy
    return (along / sigma_x) ** 2 + (across / sigma_y) ** 2


def anisotropic_kernel(size: int, sigma_x: float, sigma_y: float, theta: float = 0.0, *,
                       shape: Shape = "gaussian", beta: float = 1.0) -> torch.Tensor:
    """One normalised kernel of ``shape`` (see the module docstring)."""
    q = quadratic_form(size, sigma_x, sigma_y, theta)
    if shape == "gaussian":
        kernel = torch.exp(-0.5 * q)
    elif shape == "generalized":
        kernel = torch.exp(-0.5 * q.pow(beta))
    else:
        kernel = 1.0 / (q.pow(beta) + 1.0)
    return (kernel / kernel.sum()).float()


def sinc_kernel(cutoff: float, size: int, pad_to: int = 0) -> torch.Tensor:
    """The 2-D sinc: the impulse response of an ideal circular lowpass with ``cutoff`` (radians, up to pi),
    truncated to ``size x size``, normalised, zero-padded to ``pad_to`` when larger."""
    xx, yy = mesh_grid(size)
    r = torch.sqrt(xx ** 2 + yy ** 2)
    centre = r == 0
    safe = torch.where(centre, torch.ones_like(r), r)
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    kernel = torch.where(centre, torch.full_like(r, cutoff ** 2 / (4 * math.pi)), kernel)
    return pad_kernel((kernel / kernel.sum()).float(), pad_to)


def pad_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad a square odd kernel to ``size x size`` (same centre); unchanged when it is not smaller."""
    pad = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, (pad, pad, pad, pad)) if pad > 0 else kernel


def pulse_kernel(size: int) -> torch.Tensor:
    """The identity filter: 1 at the centre."""
    kernel = torch.zeros(size, size)
    kernel[size // 2, size // 2] = 1.0
    return kernel


# ---------------------------------------------------------------------------------------------------- drawing


def uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def choice(gen: torch.Generator, weights: Sequence[float]) -> int:
    """An index drawn with probability proportional to ``weights``."""
    return int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1, generator=gen))


@dataclass(frozen=True)
class BlurSettings:
    """One stage's blur keys of Real-ESRGAN's dataset (``blur_kernel_size``, ``kernel_list`` ...)."""

    kernel_size: int = 21
    kernel_list: Tuple[str, ...] = KERNEL_TYPES
    kernel_prob: Tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma: Tuple[float, float] = (0.2, 3.0)
    betag_range: Tuple[float, float] = (0.5, 4.0)
    betap_range: Tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1
    # traiNNer-redux's kernel_range: the odd sizes drawn from, inclusive (kernel_size is then its upper end)
    size_range: Optional[Tuple[int, int]] = None

    @property
    def sizes(self) -> Tuple[int, ...]:
        """The kernel sizes drawn from: 7, 9, ... up to ``kernel_size`` (only ``kernel_size`` when smaller), or
        the odd sizes of ``size_range``."""
        if self.size_range is not None:
            low, high = self.size_range
            return tuple(range(low + 1 - low % 2, high + 1, 2))
        return tuple(range(min(SMALLEST_KERNEL, self.kernel_size), self.kernel_size + 1, 2))


def _beta(gen: torch.Generator, low: float, high: float) -> float:
    """Real-ESRGAN's shape draw: below or above 1 with equal chance, uniform within that side of the range."""
    if uniform(gen, 0.0, 1.0) < 0.5:
        return uniform(gen, low, 1.0)
    return uniform(gen, 1.0, high)


def random_kernel(kind: str, size: int, settings: BlurSettings, gen: torch.Generator) -> torch.Tensor:
    """A kernel of type ``kind`` (one of :data:`KERNEL_TYPES`) with random sigmas, angle and shape."""
    low, high = settings.sigma
    isotropic = kind.endswith("_iso") or kind == "iso"
    sigma_x = uniform(gen, low, high)
    sigma_y, theta = (sigma_x, 0.0) if isotropic else (uniform(gen, low, high), uniform(gen, -math.pi, math.pi))
    if kind.startswith("generalized"):
        return anisotropic_kernel(size, sigma_x, sigma_y, theta, shape="generalized",
                                  beta=_beta(gen, *settings.betag_range))
    if kind.startswith("plateau"):
        return anisotropic_kernel(size, sigma_x, sigma_y, theta, shape="plateau",
                                  beta=_beta(gen, *settings.betap_range))
    return anisotropic_kernel(size, sigma_x, sigma_y, theta)


def random_blur_kernel(settings: BlurSettings, gen: torch.Generator) -> torch.Tensor:
    """One stage's kernel as Real-ESRGAN's dataset draws it: a random odd size; with ``sinc_prob`` a sinc
    (cutoff in [pi/3, pi] below size 13, [pi/5, pi] from 13 on), else a type from ``kernel_list`` by
    ``kernel_prob``; zero-padded to ``kernel_size``."""
    sizes = settings.sizes
    size = sizes[choice(gen, [1.0] * len(sizes))]
    if uniform(gen, 0.0, 1.0) < settings.sinc_prob:
        low = math.pi / 3 if size < 13 else math.pi / 5
        kernel = sinc_kernel(uniform(gen, low, math.pi), size)
    else:
        kind = settings.kernel_list[choice(gen, settings.kernel_prob)]
        kernel = random_kernel(kind, size, settings, gen)
    return pad_kernel(kernel, settings.kernel_size)


def random_final_sinc(prob: float, kernel_size: int, gen: torch.Generator,
                      size_range: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """The final sinc filter: with ``prob`` a sinc of random size (7 to ``kernel_size``, or the odd sizes of
    ``size_range``, whose upper end is then the size) and cutoff in [pi/3, pi], else the identity;
    ``kernel_size x kernel_size`` either way."""
    if size_range is not None:
        kernel_size = size_range[1]
    if uniform(gen, 0.0, 1.0) < prob:
        sizes = BlurSettings(kernel_size=kernel_size, size_range=size_range).sizes
        size = sizes[choice(gen, [1.0] * len(sizes))]
        return sinc_kernel(uniform(gen, math.pi / 3, math.pi), size, pad_to=kernel_size)
    return pulse_kernel(kernel_size)
