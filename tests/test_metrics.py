"""PSNR/SSIM must reproduce BasicSR 1.4.2's numbers, or our results are not comparable with papers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from framework.metrics import calculate_psnr, calculate_ssim, rgb_to_y, tensor_to_uint8
from framework.registry import METRIC_REGISTRY

REFERENCE = json.loads((Path(__file__).parent / "reference" / "metrics.json").read_text())
H, W = 40, 48


def _grid() -> tuple:
    """Index grids y, x, c broadcast to (H, W, 3); c is the OpenCV BGR channel index."""
    y, x, c = np.meshgrid(np.arange(H), np.arange(W), np.arange(3), indexing="ij")
    return y.astype(np.int64), x.astype(np.int64), c.astype(np.int64)


def _pair_a() -> tuple:
    y, x, c = _grid()
    img1 = (7 * x + 13 * y + 29 * c) % 256
    img2 = np.clip(img1 + ((x * y + c) % 11) - 5, 0, 255)
    return img1.astype(np.uint8), img2.astype(np.uint8)


def _pair_b() -> tuple:
    y, x, c = _grid()
    img1 = np.clip(np.round(128 + 100 * np.sin(x / 5 + c) * np.cos(y / 7)), 0, 255).astype(np.int64)
    img2 = (img1 // 8) * 8
    return img1.astype(np.uint8), img2.astype(np.uint8)


PAIRS = {"A": _pair_a, "B": _pair_b}


def _bgr_hwc_to_rgb_chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))


def test_reference_formulas_are_the_ones_we_build() -> None:
    # Guard against the reference file changing its pairs under us.
    assert set(REFERENCE["pairs"]) == set(PAIRS)
    assert REFERENCE["pairs"]["A"]["img1"] == "(7*x + 13*y + 29*c) % 256"
    assert REFERENCE["pairs"]["A"]["img2"] == "clip(img1 + ((x*y + c) % 11) - 5, 0, 255)"
    assert REFERENCE["pairs"]["B"]["img1"] == "clip(round(128 + 100*sin(x/5 + c)*cos(y/7)), 0, 255)"
    assert REFERENCE["pairs"]["B"]["img2"] == "(img1 // 8) * 8"


@pytest.mark.parametrize("entry", REFERENCE["results"],
                         ids=lambda e: f"{e['pair']}-crop{e['crop_border']}-y{int(e['test_y_channel'])}")
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_matches_basicsr_reference(entry: dict, dtype: torch.dtype) -> None:
    img1, img2 = PAIRS[entry["pair"]]()
    t1 = _bgr_hwc_to_rgb_chw(img1).to(dtype)
    t2 = _bgr_hwc_to_rgb_chw(img2).to(dtype)
    kwargs = dict(crop_border=entry["crop_border"], test_y_channel=entry["test_y_channel"])
    assert calculate_psnr(t1, t2, **kwargs) == pytest.approx(entry["psnr"], abs=1e-4)
    assert calculate_ssim(t1, t2, **kwargs) == pytest.approx(entry["ssim"], abs=1e-6)


def test_identical_images() -> None:
    img, _ = _pair_b()
    t = _bgr_hwc_to_rgb_chw(img)
    for y in (False, True):
        assert calculate_psnr(t, t.clone(), test_y_channel=y) == math.inf
        assert calculate_ssim(t, t.clone(), test_y_channel=y) == pytest.approx(1.0, abs=1e-12)


def test_single_channel_ignores_y_flag() -> None:
    img1, img2 = _pair_a()
    t1 = _bgr_hwc_to_rgb_chw(img1)[:1]
    t2 = _bgr_hwc_to_rgb_chw(img2)[:1]
    assert calculate_psnr(t1, t2, test_y_channel=True) == calculate_psnr(t1, t2)
    assert calculate_ssim(t1, t2, test_y_channel=True) == calculate_ssim(t1, t2)


def test_rgb_to_y_matches_matlab_rgb2ycbcr() -> None:
    rgb = torch.tensor([[[0.0, 255.0, 255.0, 0.0]], [[0.0, 255.0, 0.0, 0.0]], [[0.0, 255.0, 0.0, 255.0]]])
    y = rgb_to_y(rgb)
    assert y.dtype == torch.float64 and y.shape == (1, 1, 4)
    expected = [16.0, 235.0, 16 + 65.481, 16 + 24.966]
    assert y[0, 0].tolist() == pytest.approx(expected, abs=1e-9)


def test_tensor_to_uint8_rounds_and_clamps() -> None:
    # float64 so that k/255 * 255 lands exactly on the .5 ties.
    x = torch.tensor([[[-0.5, 0.0, 0.5 / 255, 1.5 / 255, 2.4 / 255, 0.999, 1.0, 3.0]]], dtype=torch.float64)
    out = tensor_to_uint8(x)
    assert out.dtype == torch.uint8 and out.shape == (1, 1, 8)
    # Round half to even: 0.5 -> 0, 1.5 -> 2.
    assert out[0, 0].tolist() == [0, 0, 0, 2, 2, 255, 255, 255]
    batched = tensor_to_uint8(x.unsqueeze(0))
    assert torch.equal(batched, out)
    with pytest.raises(ValueError):
        tensor_to_uint8(torch.zeros(2, 3, 4, 4))


def test_tensor_to_uint8_float32_roundtrip() -> None:
    # Every uint8 value survives /255 in float32 and back, so metrics on a saved PNG agree with ours.
    levels = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    assert torch.equal(tensor_to_uint8(levels.float() / 255), levels)
    assert torch.equal(tensor_to_uint8((levels.float() / 255).half()), levels)


def test_shape_mismatch_raises() -> None:
    a = torch.zeros(3, 20, 20, dtype=torch.uint8)
    b = torch.zeros(3, 20, 21, dtype=torch.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        calculate_psnr(a, b)
    with pytest.raises(ValueError, match="shapes differ"):
        calculate_ssim(a, b)


def test_bad_crop_raises() -> None:
    a = torch.zeros(3, 20, 20, dtype=torch.uint8)
    with pytest.raises(ValueError):
        calculate_psnr(a, a, crop_border=10)
    with pytest.raises(ValueError):
        calculate_ssim(a, a, crop_border=5)  # 10x10 left: smaller than the 11x11 window


def test_registered() -> None:
    assert METRIC_REGISTRY.get("psnr") is calculate_psnr
    assert METRIC_REGISTRY.get("calculate_psnr") is calculate_psnr
    assert METRIC_REGISTRY.get("ssim") is calculate_ssim
    assert METRIC_REGISTRY.get("calculate_ssim") is calculate_ssim
