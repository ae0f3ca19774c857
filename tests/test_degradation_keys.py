"""traiNNer-redux's extended degradation keys: ``blur_prob``, ``jpeg_prob`` / ``jpeg_prob2``, ``lq_usm`` with
``lq_usm_radius_range``, ``resize_mode_list`` / ``resize_mode_prob`` (and ``2``, ``3``) with Lanczos, and the
dataset's ``kernel_range`` keys."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from framework.data.kernels import anisotropic_kernel
from framework.data.realesrgan import RealESRGANDataset
from framework.data.synthesis import DegradationOptions, degradation_from, lanczos_resize, quantise, usm_sharp
from framework.errors import OptionError

from .conftest import make_paired_folders

# Every step an identity (no resize, no noise, no blur, no JPEG) at scale 1: what is left is what the keys under
# test do.
QUIET = DegradationOptions(blur_prob=0.0, resize_prob=(0.0, 0.0, 1.0), gaussian_noise_prob=1.0,
                           noise_range=(0.0, 0.0), jpeg_prob=0.0, second_blur_prob=0.0, resize_prob2=(0.0, 0.0, 1.0),
                           gaussian_noise_prob2=1.0, noise_range2=(0.0, 0.0), jpeg_prob2=0.0)


def _run(opts: DegradationOptions, gt: torch.Tensor, kernel1: torch.Tensor) -> torch.Tensor:
    pulse = torch.zeros(1, 21, 21)
    pulse[0, 10, 10] = 1.0
    degrade = degradation_from(opts, 1)
    return degrade(gt, kernel1, pulse, pulse, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))


def _gt() -> torch.Tensor:
    return quantise(torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(0)))


def test_blur_prob_and_jpeg_prob_switch_their_steps() -> None:
    gt, blur = _gt(), anisotropic_kernel(21, 2.0, 2.0).unsqueeze(0)
    assert torch.equal(_run(QUIET, gt, blur), gt)  # blur_prob 0: the first blur never happens; no JPEG either
    blurred = _run(dataclasses.replace(QUIET, blur_prob=1.0), gt, blur)
    assert (blurred - gt).abs().max() > 0.05
    compressed = _run(dataclasses.replace(QUIET, jpeg_prob=1.0, jpeg_range=(30.0, 30.0)), gt, blur)
    assert (compressed - gt).abs().max() > 0.05


def test_lq_usm_sharpens_first_with_a_radius_from_its_range() -> None:
    gt = _gt()
    sharpened = _run(dataclasses.replace(QUIET, lq_usm=True, lq_usm_radius_range=(3, 3)), gt, torch.zeros(1, 21, 21))
    assert torch.equal(sharpened, quantise(usm_sharp(gt, radius=3)))
    assert not torch.equal(sharpened, gt)


def test_lanczos_is_pils_and_modes_are_drawn_from_the_list() -> None:
    img = torch.rand(1, 1, 29, 37, generator=torch.Generator().manual_seed(0))
    for size in ((12, 16), (50, 61)):  # shrinking (antialiased) and enlarging
        pil = Image.fromarray(img[0, 0].numpy(), mode="F").resize(size[::-1], Image.Resampling.LANCZOS)
        assert np.abs(np.asarray(pil) - lanczos_resize(img, size)[0, 0].numpy()).max() < 1e-5
    gt = _gt()
    final = dataclasses.replace(QUIET, resize_mode_list2=("lanczos",), resize_mode_prob2=(1.0,),
                                resize_mode_list3=("lanczos",), resize_mode_prob3=(1.0,))
    pulse = torch.zeros(1, 21, 21)
    pulse[0, 10, 10] = 1.0
    out = degradation_from(final, 2)(gt, pulse, pulse, pulse, torch.Generator().manual_seed(1),
                                     torch.Generator().manual_seed(2))
    # the second stage resizes to the LR size (its "keep"), the final resize keeps it: both Lanczos
    assert torch.equal(out, quantise(lanczos_resize(gt, (12, 10))))


def test_mode_lists_and_kernel_ranges_are_checked() -> None:
    with pytest.raises(OptionError) as uneven:
        degradation_from(dataclasses.replace(QUIET, resize_mode_list2=("bicubic", "lanczos"),
                                             resize_mode_prob2=(1.0,)), 2)
    assert uneven.value.path == ("degradation", "resize_mode_prob2")


def test_kernel_range_draws_its_odd_sizes_and_pads_to_its_upper_end(tmp_path) -> None:
    make_paired_folders(tmp_path, ["a"], lq_size=(32, 32))
    dataset = RealESRGANDataset(str(tmp_path / "gt"), scale=2, gt_size=16, crop_pad_size=32, blur_kernel_size=12,
                                kernel_range=(5, 9), kernel_range2=(3, 5), final_kernel_range=(5, 7),
                                final_sinc_prob=1.0)
    assert dataset.kernels.first.sizes == (5, 7, 9) and dataset.kernels.second.sizes == (3, 5)
    sample = dataset[(0, 0)]
    assert sample["kernel1"].shape == (9, 9) and sample["kernel2"].shape == (5, 5)
    assert sample["sinc_kernel"].shape == (7, 7)
    with pytest.raises(OptionError) as even:
        RealESRGANDataset(str(tmp_path / "gt"), scale=2, gt_size=16, crop_pad_size=32, kernel_range=(5, 16))
    assert even.value.path == ("kernel_range",)
