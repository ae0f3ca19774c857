"""Fixed degraded validation sets: whole HR images through the Real-ESRGAN training pipeline, once.

Training degrades random crops anew at every iteration, so its losses cannot be compared across runs; a set
of stored LR images made by the same code (the dataset's :class:`~framework.data.realesrgan.KernelSampler`,
the model's :class:`~framework.data.synthesis.Degradation`) gives a fixed validation set on which the model can
be measured against bicubic upsampling of the same inputs. Each image's draws come from generators derived from
(``seed``, its name) alone: the same image gets the same LR input whatever else is in the folder, and on
every run.
"""
from __future__ import annotations

import hashlib
from typing import Tuple

import torch

from ..rng import derived_generator
from .image_io import to_float, to_integer
from .realesrgan import KernelSampler
from .synthesis import Degradation
from .transforms import mod_crop


def name_key(name: str) -> Tuple[int, int]:
    """Two 32-bit words from an image's name (stable across runs and machines, unlike ``hash``)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:8], "little")


@torch.no_grad()
def degrade_image(hr: torch.Tensor, degradation: Degradation, kernels: KernelSampler, seed: int,
                  name: str) -> torch.Tensor:
    """The 8-bit LR input (3, H / scale, W / scale) of an HR image (3, H, W), any integer or float dtype, as a
    batch of one on the CPU; the HR is cropped to a multiple of the scale (bottom and right, as the datasets
    do) and degraded as it is (not sharpened: the validation target is the HR file)."""
    if hr.shape[0] != 3:
        raise ValueError(f"{name}: {hr.shape[0]} channels; the degradation takes RGB images")
    gt = to_float(mod_crop(hr, degradation.scale))
    words = name_key(name)
    cpu = derived_generator(seed, *words, 0)
    noise = derived_generator(seed, *words, 1)
    drawn = kernels.draw(cpu)
    lq = degradation(gt.unsqueeze(0), drawn["kernel1"].unsqueeze(0), drawn["kernel2"].unsqueeze(0),
                     drawn["sinc_kernel"].unsqueeze(0), cpu, noise)
    return to_integer(lq[0], torch.uint8)
