"""traiNNer-redux's loss family against values worked out from each published definition: analytic cases
(constant images, orthogonal colours, identical inputs) and plain loop re-implementations of the formulas."""
from __future__ import annotations

import cmath
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from framework.errors import UserError
from framework.image_losses import (CosimLoss, FFLoss, HSLuvLoss, LDLLoss, MSSIMLoss, MSSSIML1Loss, SobelEdgeLoss,
                                    rgb_to_hsluv)
from framework.perceptual import PerceptualLoss, patch_distribution_distance

from torchvision.models import vgg as tv_vgg

from .test_gan import MEAN, STD, random_vgg_file


def constant(value: float, size: int = 32) -> torch.Tensor:
    return torch.full((1, 3, size, size), value, dtype=torch.float64)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def close(value: torch.Tensor, expected: float, tol: float = 1e-6) -> None:
    assert value.shape == () and math.isclose(float(value), expected, rel_tol=tol, abs_tol=tol), (float(value),
                                                                                                   expected)


# ------------------------------------------------------------------------------------------------ HSLuv

# (r, g, b) -> (hue, saturation, lightness) of the HSLuv reference implementation (hsluv.org, Python 5.0.4).
HSLUV_REFERENCE = [
    ((1, 0, 0), (12.177050630061776, 100.0, 53.23711559542933)),
    ((0, 1, 0), (127.71501294924047, 100.0, 87.73551910965973)),
    ((0, 0, 1), (265.8743202181779, 100.0, 32.30087290398002)),
    ((0.5, 0.5, 0.5), (0.0, 0.0, 53.38896474111415)),
    ((0.2, 0.4, 0.6), (246.942440261812, 78.45117445648187, 42.009163494482195)),
    ((0.9, 0.8, 0.1), (74.22610087615936, 98.04105028564571, 81.83800097450357)),
    ((0.01, 0.02, 0.005), (114.64103845396123, 66.40609037187176, 1.1739164004252505)),
    ((1, 1, 1), (0.0, 0.0, 100.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize("rgb,expected", HSLUV_REFERENCE)
def test_rgb_to_hsluv_matches_the_reference_implementation(rgb: tuple, expected: tuple) -> None:
    got = rgb_to_hsluv(torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)).view(3)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-6)


def _pixel(rgb: tuple) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 4, 4).clone()


def test_hsluv_loss_red_against_blue_by_hand() -> None:
    # hue: |12.177 - 265.874| / 360 = 0.70471, the short way round 0.29529, times 2; saturation equal;
    # lightness |53.237 - 32.301| / 100; each third of the total.
    red, blue = HSLUV_REFERENCE[0][1], HSLUV_REFERENCE[2][1]
    hue = abs(red[0] - blue[0]) / 360
    expected = (min(hue, 1 - hue) * 2 + 0 + abs(red[2] - blue[2]) / 100) / 3
    close(HSLuvLoss()(_pixel((1, 0, 0)), _pixel((0, 0, 1))), expected)
    close(HSLuvLoss(loss_weight=0.5)(_pixel((1, 0, 0)), _pixel((0, 0, 1))), 0.5 * expected)
    # separate weights and the l2 criterion on saturation and lightness
    expected_l2 = 0.2 * min(hue, 1 - hue) * 2 + 0.7 * (red[2] - blue[2]) ** 2 / 100 ** 2
    close(HSLuvLoss(0.2, 0.1, 0.7, criterion="l2")(_pixel((1, 0, 0)), _pixel((0, 0, 1))), expected_l2)


def test_hsluv_loss_hue_rules_for_greys() -> None:
    grey, dark_grey = _pixel((0.5, 0.5, 0.5)), _pixel((0.3, 0.3, 0.3))
    # two greys: no hue term, only lightness (L of 0.3 grey from the same formula)
    l_dark = float(rgb_to_hsluv(dark_grey)[0, 2, 0, 0]) / 100
    close(HSLuvLoss()(grey, dark_grey), abs(0.5338896474111415 - l_dark) / 3)
    # grey against red: the hue term is the larger saturation (1.0), saturation differs by 1
    expected = (1.0 + 1.0 + abs(0.5338896474111415 - 0.5323711559542933)) / 3
    close(HSLuvLoss()(grey, _pixel((1, 0, 0))), expected)
    assert float(HSLuvLoss()(_pixel((0.2, 0.4, 0.6)), _pixel((0.2, 0.4, 0.6)))) == 0


def test_hsluv_loss_downscale_and_bad_criterion() -> None:
    x, y = rand(1, 3, 8, 8, seed=1), rand(1, 3, 8, 8, seed=2)
    pooled = HSLuvLoss()(torch.nn.functional.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(y, 2))
    torch.testing.assert_close(HSLuvLoss(downscale_factor=2)(x, y), pooled)
    with pytest.raises(UserError, match="criterion"):
        HSLuvLoss(criterion="huber")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ MS-SSIM

def test_mssim_of_constant_images_by_hand() -> None:
    # A 1x1 window: means are the pixels, variances and covariance 0, so cs = C2 / C2 = 1 at every scale
    # and MS-SSIM = l ** 0.1333 with l = (2ab + C1) / (a^2 + b^2 + C1) (average pooling keeps constants);
    # (a, a, a) and (b, b, b) point the same way: the cosine penalty is 0.
    a, b, c1 = 0.2, 0.6, 0.01 ** 2
    luminance = (2 * a * b + c1) / (a * a + b * b + c1)
    close(MSSIMLoss(window_size=1)(constant(a), constant(b)), 1 - luminance ** 0.1333, 1e-6)
    close(MSSIMLoss(window_size=1, loss_weight=3.0)(constant(a), constant(b)), 3 * (1 - luminance ** 0.1333), 1e-6)


def test_mssim_identical_is_zero_and_cosine_penalty_of_orthogonal_colours() -> None:
    x = rand(2, 3, 32, 32, seed=3)
    close(MSSIMLoss()(x, x), 0.0, 1e-6)
    red = torch.zeros(1, 3, 16, 16, dtype=torch.float64)
    red[:, 0] = 1
    green = red.roll(1, dims=1)
    # red . green = 0 after the clamp to 1e-12: cosine ~ 0, penalty = cosim_lambda * (1 - 0)
    close(CosimLoss()(red, green), 5.0, 1e-9)
    close(CosimLoss(cosim_lambda=2.0, loss_weight=0.5)(red, green), 1.0, 1e-9)
    close(CosimLoss()(red, red * 0.5), 0.0, 1e-9)  # same direction, other brightness


def test_msssim_l1_of_constant_images_by_hand() -> None:
    # Replicated borders keep constants constant under every Gaussian: variances 0, cs = 1, the luminance
    # term of each of the 3 channels is l, so MS-SSIM = l^3; the smoothed L1 error is |a - b|.
    a, b, c1, alpha = 0.3, 0.5, 0.01 ** 2, 0.1
    luminance = (2 * a * b + c1) / (a * a + b * b + c1)
    expected = alpha * (1 - luminance ** 3) + (1 - alpha) * abs(a - b)
    close(MSSSIML1Loss()(constant(a), constant(b)), expected, 1e-6)
    close(MSSSIML1Loss(alpha=0.5, loss_weight=2.0)(constant(a), constant(b)),
          2 * (0.5 * (1 - luminance ** 3) + 0.5 * abs(a - b)), 1e-6)
    x = rand(1, 3, 24, 24, seed=4)
    close(MSSSIML1Loss()(x, x), 0.9e-6, 1e-7)  # only Charbonnier's sqrt(1e-12), times (1 - alpha)
    with pytest.raises(UserError, match="gaussian_sigmas"):
        MSSSIML1Loss(gaussian_sigmas=[1.0, 2.0])


# ------------------------------------------------------------------------------------------------ LDL

def naive_ldl(output: np.ndarray, ema: np.ndarray, gt: np.ndarray, ksize: int = 7) -> float:
    """Liang et al.'s artefact map written out pixel by pixel, then the L1 loss of the weighted images."""
    residual = np.abs(gt - output).sum(0)
    residual_ema = np.abs(gt - ema).sum(0)
    patch = residual.var(ddof=1) ** (1 / 5)
    pad = ksize // 2
    padded = np.pad(residual, pad, mode="reflect")
    h, w = residual.shape
    weight = np.zeros_like(residual)
    for i in range(h):
        for j in range(w):
            local = padded[i:i + ksize, j:j + ksize].var(ddof=1)
            weight[i, j] = 0.0 if residual[i, j] < residual_ema[i, j] else patch * local
    return float(np.abs(weight * output - weight * gt).mean())


def test_ldl_against_the_map_written_out() -> None:
    gt, output = rand(1, 3, 9, 8, seed=5), rand(1, 3, 9, 8, seed=6)
    ema = gt + (output - gt) * torch.where(rand(1, 1, 9, 8, seed=7) > 0.5, 0.5, 1.5)  # closer here, further there
    expected = naive_ldl(output[0].numpy(), ema[0].numpy(), gt[0].numpy())
    assert expected > 0
    close(LDLLoss()(output, ema, gt), expected, 1e-9)
    close(LDLLoss(loss_weight=0.25)(output, ema, gt), 0.25 * expected, 1e-9)
    close(LDLLoss()(gt, ema, gt), 0.0)  # a perfect output has no artefacts
    # the trained output is closer than the EMA everywhere: what it changed are details, not artefacts
    close(LDLLoss()(output, gt + 2 * (output - gt), gt), 0.0)


def test_ldl_map_carries_no_gradient() -> None:
    gt, output = rand(1, 3, 8, 8, seed=8), rand(1, 3, 8, 8, seed=9).requires_grad_(True)
    LDLLoss()(output, output.detach() * 0.9, gt).backward()
    assert output.grad is not None and torch.isfinite(output.grad).all()


# ------------------------------------------------------------------------------------------------ focal frequency

def naive_ffl(pred: np.ndarray, target: np.ndarray, alpha: float = 1.0, patch_factor: int = 1) -> float:
    """Jiang et al.'s loss on one image, with the DFT summed by hand: per patch, per channel, each frequency's
    squared distance weighted by distance ** alpha / its maximum."""
    c, h, w = pred.shape
    ph, pw = h // patch_factor, w // patch_factor
    values = []
    for pi in range(patch_factor):
        for pj in range(patch_factor):
            for ch in range(c):
                def dft(img: np.ndarray, u: int, v: int) -> complex:
                    return sum(img[m, n] * cmath.exp(-2j * math.pi * (u * m / ph + v * n / pw))
                               for m in range(ph) for n in range(pw)) / math.sqrt(ph * pw)
                p = pred[ch, pi * ph:(pi + 1) * ph, pj * pw:(pj + 1) * pw]
                t = target[ch, pi * ph:(pi + 1) * ph, pj * pw:(pj + 1) * pw]
                dist = np.array([[abs(dft(p, u, v) - dft(t, u, v)) ** 2 for v in range(pw)] for u in range(ph)])
                weight = np.sqrt(dist) ** alpha
                weight = weight / weight.max()
                values.append(weight * dist)
    return 50 * float(np.mean(values))


@pytest.mark.parametrize("alpha,patch_factor", [(1.0, 1), (2.0, 1), (1.0, 2)])
def test_focal_frequency_against_the_dft_summed_by_hand(alpha: float, patch_factor: int) -> None:
    pred, target = rand(1, 2, 4, 6, seed=10), rand(1, 2, 4, 6, seed=11)
    if patch_factor == 2:
        pred, target = rand(1, 2, 4, 4, seed=10), rand(1, 2, 4, 4, seed=11)
    expected = naive_ffl(pred[0].numpy(), target[0].numpy(), alpha, patch_factor)
    close(FFLoss(alpha=alpha, patch_factor=patch_factor)(pred, target), expected, 1e-5)


def test_focal_frequency_of_constant_images_by_hand() -> None:
    # A constant image's orthonormal spectrum is a * sqrt(hw) at DC and 0 elsewhere: only DC differs, with
    # weight 1 and squared distance (a - b)^2 hw; the mean over c*h*w frequencies is (a - b)^2; times 50.
    close(FFLoss()(constant(0.2, 8), constant(0.7, 8)), 50 * 0.5 ** 2, 1e-5)
    close(FFLoss(loss_weight=0.2)(constant(0.2, 8), constant(0.7, 8)), 0.2 * 50 * 0.25, 1e-5)
    x = rand(2, 3, 8, 8, seed=12)
    close(FFLoss()(x, x), 0.0)
    with pytest.raises(UserError, match="patch_factor"):
        FFLoss(patch_factor=0)


# ------------------------------------------------------------------------------------------------ Sobel

def naive_sobel(pred: np.ndarray, gt: np.ndarray) -> float:
    """Sobel gradients of the luma with zero borders, summed by hand; the mean squared difference."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4
    grads = []
    for img in (pred, gt):
        luma = np.pad(0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2], 1)
        h, w = img.shape[1:]
        gx = np.array([[(kx * luma[i:i + 3, j:j + 3]).sum() for j in range(w)] for i in range(h)])
        gy = np.array([[(kx.T * luma[i:i + 3, j:j + 3]).sum() for j in range(w)] for i in range(h)])
        grads.append(np.stack([gx, gy]))
    return float(((grads[0] - grads[1]) ** 2).mean())


def test_sobel_edge_against_the_gradients_summed_by_hand() -> None:
    pred, gt = rand(1, 3, 5, 7, seed=13), rand(1, 3, 5, 7, seed=14)
    loss = SobelEdgeLoss(loss_weight=2.0).double()
    close(loss(pred, gt), 2 * naive_sobel(pred[0].numpy(), gt[0].numpy()), 1e-6)  # float32 luma weights
    # only edges count: adding a constant changes the luma, not its gradients (away from the zero border)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    close(torch.nn.functional.mse_loss(loss.gradients(pred + 0.2)[inner], loss.gradients(pred)[inner]), 0.0, 1e-12)


# ------------------------------------------------------------------------------------------------ perceptual

def test_patch_distribution_distance_by_hand() -> None:
    # one channel of 4 pixels: [1, 1, 2, 0] / 4 and [0, 2, 1, 1] / 4; CDFs [.25 .5 1 1] and [0 .5 .75 1];
    # L1 distance 0.25 + 0 + 0.25 + 0 = 0.5
    a = torch.tensor([1.0, 1.0, 2.0, 0.0], dtype=torch.float64).view(1, 1, 2, 2)
    b = torch.tensor([0.0, 2.0, 1.0, 1.0], dtype=torch.float64).view(1, 1, 2, 2)
    close(patch_distribution_distance(a, b), 0.5, 1e-9)
    close(patch_distribution_distance(a, a), 0.0)


def all_features(state: dict, x: torch.Tensor) -> list:
    """Every output of torchvision's VGG19 ``features`` on ImageNet-normalised ``x`` (index -> tensor)."""
    features = tv_vgg.make_layers(tv_vgg.cfgs["E"])
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    out, h = [], (x - MEAN) / STD
    with torch.no_grad():
        for layer in features:
            h = layer(h.clone())  # torchvision's ReLUs work in place
            out.append(h)
    return out


def test_perceptual_pdl_l1_and_traiNNer_redux_default_layers(tmp_path: Path) -> None:
    state = random_vgg_file(tmp_path / "vgg19.pth")
    x, gt = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    fx, fg = all_features(state, x), all_features(state, gt)
    index = {"conv1_2": 2, "conv2_2": 7, "conv3_4": 16, "conv4_4": 25, "conv5_4": 34,
             "relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
    weights = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    # pdl+l1: the conv layers with l1, their ReLUs with the patch distribution distance times w_lambda
    expected = sum(w * float(torch.nn.functional.l1_loss(fx[index[n]], fg[index[n]])) for n, w in weights.items())
    expected += sum(w * 0.01 * float(patch_distribution_distance(fx[index[n] + 1], fg[index[n] + 1]))
                    for n, w in weights.items())
    percep, style = PerceptualLoss(criterion="pdl+l1", loss_weight=0.5, weights_path=str(tmp_path / "vgg19.pth"))(x, gt)
    assert style is None
    close(percep, 0.5 * expected, 1e-4)
    charbonnier, _ = PerceptualLoss(criterion="charbonnier", weights_path=str(tmp_path / "vgg19.pth"))(x, gt)
    expected_c = sum(w * float(torch.sqrt((fx[index[n]] - fg[index[n]]) ** 2 + 1e-12).mean())
                     for n, w in weights.items())
    close(charbonnier, expected_c, 1e-4)
    with pytest.raises(UserError, match="fdl is not provided"):
        PerceptualLoss(criterion="fdl+l1", weights_path=str(tmp_path / "vgg19.pth"))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ DISTS

def test_l2_pooling_by_hand() -> None:
    # kernel outer(0.5, 1, 0.5) / 4; a constant 2 keeps its value where the whole window is inside; at the
    # zero-padded corner 4 of the 9 weights (0.25 + 2 * 0.125 + 0.0625 = 0.5625) see it: 2 * sqrt(0.5625),
    # along an edge 6 (0.75): 2 * sqrt(0.75)
    from framework.perceptual import L2Pooling

    out = L2Pooling(1)(torch.full((1, 1, 4, 4), 2.0, dtype=torch.float64))
    edge = 2 * math.sqrt(0.75)
    torch.testing.assert_close(out[0, 0], torch.tensor([[1.5, edge], [edge, 2.0]], dtype=torch.float64))


def dists_files(folder: Path, seed: int = 0) -> tuple:
    """A VGG16 with fixed random weights and random positive alpha/beta, saved as the real files are."""
    state = random_vgg_file(folder / "vgg16.pth", "vgg16", seed=seed)
    g = torch.Generator().manual_seed(seed)
    weights = {"alpha": torch.rand(1, 1475, 1, 1, generator=g), "beta": torch.rand(1, 1475, 1, 1, generator=g)}
    torch.save(weights, folder / "dists.pt")
    return state, weights


def naive_dists(state: dict, weights: dict, x: torch.Tensor, y: torch.Tensor) -> float:
    """DISTS from its paper, written out: VGG16 stages ending at relu1_2 .. relu5_3 with L2 pooling (the Hann
    3x3 window) instead of max pooling, the image itself as stage 0; per channel texture and structure terms."""
    features = tv_vgg.make_layers(tv_vgg.cfgs["D"])
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    hann = torch.tensor([0.5, 1.0, 0.5])

    def stages(img: torch.Tensor) -> list:
        out, h = [img], (img - MEAN) / STD
        for index in range(30):
            layer = features[index]
            if isinstance(layer, torch.nn.MaxPool2d):
                k = (torch.outer(hann, hann) / 4).expand(h.shape[1], 1, 3, 3)
                h = torch.sqrt(torch.nn.functional.conv2d(h ** 2, k, stride=2, padding=1, groups=h.shape[1]) + 1e-12)
            else:
                h = layer(h.clone())
            if index in (3, 8, 15, 22, 29):
                out.append(h)
        return out

    alpha, beta = weights["alpha"].flatten(), weights["beta"].flatten()
    total = float(alpha.sum() + beta.sum())
    score, start = 0.0, 0
    with torch.no_grad():
        for fx, fy in zip(stages(x), stages(y), strict=True):
            c = fx.shape[1]
            for ch in range(c):
                a, b = fx[0, ch], fy[0, ch]
                ma, mb = float(a.mean()), float(b.mean())
                va, vb = float(((a - ma) ** 2).mean()), float(((b - mb) ** 2).mean())
                cov = float((a * b).mean()) - ma * mb
                s1 = (2 * ma * mb + 1e-6) / (ma ** 2 + mb ** 2 + 1e-6)
                s2 = (2 * cov + 1e-6) / (va + vb + 1e-6)
                score += (float(alpha[start + ch]) * s1 + float(beta[start + ch]) * s2) / total
            start += c
    return 1 - score


def test_dists_against_its_formula_written_out(tmp_path: Path) -> None:
    from framework.perceptual import DISTSLoss

    state, weights = dists_files(tmp_path)
    loss = DISTSLoss(weights_path=str(tmp_path / "vgg16.pth"), dists_weights_path=str(tmp_path / "dists.pt"),
                     loss_weight=2.0)
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    close(loss(x, y), 2 * naive_dists(state, weights, x, y), 1e-4)
    close(loss(x, x), 0.0, 1e-5)  # S1 = S2 = 1 everywhere: the normalised weights sum to 1


def test_dists_without_its_weights_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.perceptual import DISTSLoss

    random_vgg_file(tmp_path / "vgg16.pth", "vgg16")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UserError, match=r"torch/hub/checkpoints/dists_weights.pt does not exist.*dists_weights_path"):
        DISTSLoss(weights_path=str(tmp_path / "vgg16.pth"))
    torch.save({"alpha": torch.ones(3)}, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="does not hold DISTS's alpha and beta"):
        DISTSLoss(weights_path=str(tmp_path / "vgg16.pth"), dists_weights_path=str(tmp_path / "bad.pt"))


# ------------------------------------------------------------------------------------------------ FLIP

def test_flip_of_flat_colours_by_hand() -> None:
    # Flat images: the contrast filters keep them, features are 0, so FLIP is the compressed colour error.
    # CIELAB (D65) of sRGB green (87.735, -86.183, 83.179) and blue (32.303, 79.195, -107.860), Hunt-adjusted
    # (a, b times L / 100), HyAB = |dL| + |d(a, b)| = 203.30; cmax = 203.30 ** 0.7 = 41.28: green vs blue is the
    # largest error, 1. Black vs white: HyAB 100, 100 ** 0.7 = 25.12 > 0.4 cmax, so
    # 0.95 + (25.12 - 0.4 cmax) / (0.6 cmax) * 0.05.
    from framework.image_losses import FLIPLoss

    green_lab, blue_lab = (87.735, -86.183, 83.179), (32.303, 79.195, -107.860)
    hunt = [(lab[0], lab[1] * lab[0] / 100, lab[2] * lab[0] / 100) for lab in (green_lab, blue_lab)]
    cmax = (abs(hunt[0][0] - hunt[1][0]) + math.hypot(hunt[0][1] - hunt[1][1], hunt[0][2] - hunt[1][2])) ** 0.7
    loss = FLIPLoss().double()
    assert math.isclose(loss.cmax, cmax, rel_tol=1e-4)
    green, blue = torch.zeros(1, 3, 8, 8, dtype=torch.float64), torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    green[:, 1], blue[:, 2] = 1, 1
    close(loss(green, blue), 1.0, 1e-6)
    close(loss(constant(0.0, 8), constant(1.0, 8)), 0.95 + (100 ** 0.7 - 0.4 * cmax) / (0.6 * cmax) * 0.05, 1e-4)
    close(FLIPLoss(loss_weight=0.5).double()(constant(0.0, 8), constant(1.0, 8)),
          0.5 * (0.95 + (100 ** 0.7 - 0.4 * cmax) / (0.6 * cmax) * 0.05), 1e-4)
    close(loss(green, green), 0.0, 1e-6)


# Mean and two pixels of the error map of NVIDIA's reference evaluator (flip-evaluator 1.7, LDR) on the
# patterns below, at 67 and 20 pixels per degree.
FLIP_REFERENCE = [(67.0, 0.21785134077072144, 0.19441895186901093, 0.264583945274353),
                  (20.0, 0.4681012034416199, 0.5991126894950867, 0.5586672425270081)]


@pytest.mark.parametrize("ppd,mean,at_5_7,at_12_3", FLIP_REFERENCE)
def test_flip_matches_nvidias_reference_evaluator(ppd: float, mean: float, at_5_7: float, at_12_3: float) -> None:
    from framework.image_losses import FLIPLoss

    h, w, c = torch.meshgrid(torch.arange(24.0), torch.arange(20.0), torch.arange(3.0), indexing="ij")
    reference = (0.5 + 0.4 * torch.sin(0.7 * h + 1.3 * w + 2 * c)).float()
    test = (reference + 0.15 * torch.cos(1.1 * h - 0.6 * w + c)).clamp(0, 1).float()
    as_batch = lambda img: img.permute(2, 0, 1)[None].double()  # noqa: E731
    loss = FLIPLoss(pixels_per_degree=ppd).double()
    error = loss.error_map(as_batch(test), as_batch(reference))[0]
    assert math.isclose(float(error[5, 7]), at_5_7, abs_tol=1e-5)
    assert math.isclose(float(error[12, 3]), at_12_3, abs_tol=1e-5)
    close(loss(as_batch(test), as_batch(reference)), mean, 1e-5)
