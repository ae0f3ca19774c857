"""Real-ESRGAN's degradation pipeline: kernels against the published formulas, noise statistics,
the dataset and the batch pipeline, RealESRNetModel / RealESRGANModel runs and their exact resume, and the
Real-ESRGAN option layout."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from framework.data import kernels as K
from framework.data.realesrgan import RealESRGANDataset
from framework.data.synthesis import Degradation, Stage, filter2d, gaussian_noise, poisson_noise, usm_sharp
from framework.data.example_data import generate_example_data
from framework.errors import OptionError
from framework.rng import derived_generator

from .test_model_contract import assert_same_final_state
from .tinyrun import load, stop_with_sigterm, train_in_process, write_options

# ------------------------------------------------------------------------------------------------ kernels


def _closed_gaussian(size: int, sx: float, sy: float) -> torch.Tensor:
    """exp(-(x^2 / (2 sx^2) + y^2 / (2 sy^2))), normalised, written out point by point (x: column offset)."""
    c = size // 2
    k = torch.tensor([[math.exp(-((x - c) ** 2 / (2 * sx ** 2) + (y - c) ** 2 / (2 * sy ** 2)))
                       for x in range(size)] for y in range(size)], dtype=torch.float64)
    return k / k.sum()


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_isotropic_gaussian_equals_the_closed_form(sigma: float) -> None:
    k = K.anisotropic_kernel(21, sigma, sigma)
    assert k.shape == (21, 21) and k.dtype == torch.float32
    torch.testing.assert_close(k.double(), _closed_gaussian(21, sigma, sigma), rtol=1e-5, atol=1e-7)


def test_anisotropic_gaussian_axes_and_rotation() -> None:
    k0 = K.anisotropic_kernel(15, 3.0, 1.0, 0.0)
    torch.testing.assert_close(k0.double(), _closed_gaussian(15, 3.0, 1.0), rtol=1e-5, atol=1e-7)
    # a quarter turn swaps the axes: the long axis becomes vertical
    torch.testing.assert_close(K.anisotropic_kernel(15, 3.0, 1.0, math.pi / 2), k0.T, rtol=1e-5, atol=1e-7)
    # at 45 degrees the kernel is symmetric about the diagonal and longer along it
    k45 = K.anisotropic_kernel(15, 3.0, 1.0, math.pi / 4)
    torch.testing.assert_close(k45, k45.T)
    assert k45[7 + 3, 7 + 3] > k45[7 + 3, 7 - 3]


def test_generalized_and_plateau_follow_their_formulas() -> None:
    size, s, beta = 13, 1.7, 1.6
    c = size // 2
    q = torch.tensor([[((x - c) ** 2 + (y - c) ** 2) / s ** 2 for x in range(size)] for y in range(size)],
                     dtype=torch.float64)
    gen = torch.exp(-0.5 * q ** beta)
    plateau = 1 / (1 + q ** beta)
    torch.testing.assert_close(K.anisotropic_kernel(size, s, s, shape="generalized", beta=beta).double(),
                               gen / gen.sum(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(K.anisotropic_kernel(size, s, s, shape="plateau", beta=beta).double(),
                               plateau / plateau.sum(), rtol=1e-5, atol=1e-7)
    # beta 1: the generalized Gaussian is the Gaussian
    torch.testing.assert_close(K.anisotropic_kernel(size, s, s, shape="generalized", beta=1.0),
                               K.anisotropic_kernel(size, s, s))


def test_sinc_kernel_is_a_circular_lowpass_with_its_cutoff() -> None:
    cutoff = math.pi / 2
    k = K.sinc_kernel(cutoff, 61).double()
    assert k.shape == (61, 61) and abs(float(k.sum()) - 1) < 1e-6
    torch.testing.assert_close(k, k.T)
    c = 30
    # the formula: w^2 / (4 pi) at the centre, w J1(w r) / (2 pi r) at r = 1 (J1(pi/2) = 0.566824088)
    assert float(k[c, c] / k[c, c + 1]) == pytest.approx((cutoff ** 2 / (4 * math.pi)) /
                                                         (cutoff * 0.566824088 / (2 * math.pi)), rel=1e-5)
    # frequency response along a radius: ~1 well inside the cutoff, ~0 well outside, 1/2 at it
    yy, xx = torch.meshgrid(torch.arange(61.0) - c, torch.arange(61.0) - c, indexing="ij")

    def response(wx: float, wy: float = 0.0) -> float:
        return float((k * torch.cos(wx * xx + wy * yy)).sum())

    for w in (0.0, 0.2 * math.pi, 0.35 * math.pi):
        assert response(w) == pytest.approx(1.0, abs=0.08), w
    for w in (0.65 * math.pi, 0.9 * math.pi):
        assert abs(response(w)) < 0.08, w
    diagonal = 0.3 * math.pi / math.sqrt(2)  # circular: the same inside the cutoff along a diagonal
    assert response(diagonal, diagonal) == pytest.approx(1.0, abs=0.08)
    assert response(cutoff) == pytest.approx(0.5, abs=0.1)
    padded = K.sinc_kernel(cutoff, 7, pad_to=21)
    assert padded.shape == (21, 21) and float(padded[:7].abs().sum()) == 0.0


@pytest.mark.parametrize("kind", K.KERNEL_TYPES)
def test_every_random_kernel_sums_to_one_with_an_odd_size(kind: str) -> None:
    settings = K.BlurSettings(kernel_size=21, kernel_list=(kind,), kernel_prob=(1.0,), sinc_prob=0.0)
    gen = torch.Generator().manual_seed(1)
    sizes = set()
    for _ in range(40):
        k = K.random_blur_kernel(settings, gen)
        assert k.shape == (21, 21)
        assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
        assert bool((k >= 0).all())
        torch.testing.assert_close(k, k.flip(0).flip(1))  # centred: point-symmetric
        rows = torch.nonzero(k.abs().sum(1) > 0).flatten()
        sizes.add(int(rows[-1] - rows[0] + 1))
    assert sizes <= set(range(1, 22, 2)) and len(sizes) > 3  # odd (a steep kernel's edge may underflow to 0)
    if kind.endswith("iso") and not kind.endswith("aniso"):
        torch.testing.assert_close(k, k.T)


def test_random_sinc_and_final_sinc() -> None:
    gen = torch.Generator().manual_seed(2)
    sinc_only = K.BlurSettings(kernel_size=21, sinc_prob=1.0)
    for _ in range(10):
        k = K.random_blur_kernel(sinc_only, gen)
        assert k.shape == (21, 21) and float(k.sum()) == pytest.approx(1.0, abs=1e-5)
        assert float(k.min()) < 0  # a sinc has negative lobes
    assert torch.equal(K.random_final_sinc(0.0, 21, gen), K.pulse_kernel(21))
    k = K.random_final_sinc(1.0, 21, gen)
    assert k.shape == (21, 21) and float(k.sum()) == pytest.approx(1.0, abs=1e-5)


def test_kernel_sizes_must_be_odd() -> None:
    with pytest.raises(ValueError, match="odd"):
        K.mesh_grid(20)


# -------------------------------------------------------------------------------------------------- noise

GRAY_IMAGE = torch.full((300, 3, 24, 24), 0.5)


def _gens(seed: int = 0) -> tuple:
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)


def test_gaussian_noise_sigma_stays_in_its_range_and_is_zero_mean() -> None:
    noise = gaussian_noise(GRAY_IMAGE, (5.0, 20.0), 0.0, *_gens())
    std = noise.flatten(1).std(dim=1) * 255
    mean = noise.flatten(1).mean(dim=1) * 255
    assert float(std.min()) > 5 * 0.85 and float(std.max()) < 20 * 1.15
    assert float(std.min()) < 6 and float(std.max()) > 19  # the whole range is drawn
    assert float(mean.abs().max()) < 3 * 20 / math.sqrt(3 * 24 * 24)  # three standard errors of the mean
    assert abs(float(noise.mean()) * 255) < 0.1


def test_gray_noise_is_equal_across_channels() -> None:
    gray = gaussian_noise(GRAY_IMAGE[:20], (5.0, 20.0), 1.0, *_gens())
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    colour = gaussian_noise(GRAY_IMAGE[:20], (5.0, 20.0), 0.0, *_gens())
    assert not torch.equal(colour[:, 0], colour[:, 1])
    img = torch.rand(20, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    pgray = poisson_noise(img, (0.5, 2.0), 1.0, *_gens())
    assert torch.equal(pgray[:, 0], pgray[:, 1]) and torch.equal(pgray[:, 1], pgray[:, 2])
    mixed = gaussian_noise(GRAY_IMAGE[:200], (5.0, 20.0), 0.4, *_gens(3))
    share = float((mixed[:, 0] == mixed[:, 1]).flatten(1).all(1).float().mean())
    assert 0.25 < share < 0.55  # about gray_noise_prob of the images


def test_poisson_noise_scale_stays_in_its_range() -> None:
    """On 8-bit images with all 256 levels, shot noise at pixel value v has std scale * sqrt(v / 256)."""
    gen = torch.Generator().manual_seed(4)
    img = torch.randint(0, 256, (200, 3, 32, 32), generator=gen).float() / 255
    noise = poisson_noise(img, (0.5, 2.5), 0.0, *_gens())
    bright = img > 0.2
    normalised = noise / torch.sqrt(img / 256).clamp_min(1e-6)
    scale = torch.stack([normalised[i][bright[i]].std() for i in range(200)])
    mean = torch.stack([noise[i][bright[i]].mean() for i in range(200)])
    assert float(scale.min()) > 0.5 * 0.9 and float(scale.max()) < 2.5 * 1.1
    assert float(scale.min()) < 0.6 and float(scale.max()) > 2.3
    assert float(mean.abs().max()) < 0.02


# --------------------------------------------------------------------------------------- the batch pipeline


def _stage(**changes: Any) -> Stage:
    values: Dict[str, Any] = dict(resize_prob=(0.2, 0.7, 0.1), resize_range=(0.15, 1.5), gaussian_noise_prob=0.5,
                                  noise_range=(1.0, 30.0), poisson_scale_range=(0.05, 3.0), gray_noise_prob=0.4,
                                  jpeg_range=(30.0, 95.0))
    values.update(changes)
    return Stage(**values)


def test_degradation_makes_8bit_lr_of_the_right_size_and_depends_only_on_its_generators() -> None:
    from framework.data.jpeg import jpeg_compress

    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(3, 3, 64, 64, generator=gen)
    k1 = torch.stack([K.random_blur_kernel(K.BlurSettings(), gen) for _ in range(3)])
    k2 = torch.stack([K.random_blur_kernel(K.BlurSettings(), gen) for _ in range(3)])
    sinc = torch.stack([K.random_final_sinc(0.8, 21, gen) for _ in range(3)])
    degrade = Degradation(4, _stage(), _stage(resize_prob=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2)), 0.8,
                          jpeg_compress)
    outs = [degrade(gt, k1, k2, sinc, derived_generator(1, i), derived_generator(1, i, 9)) for i in (0, 0, 1)]
    for out in outs:
        assert out.shape == (3, 3, 16, 16)
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        assert torch.equal(out * 255, (out * 255).round())
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_filter2d_applies_each_samples_kernel() -> None:
    img = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    kernels = torch.stack([K.pulse_kernel(7), K.anisotropic_kernel(7, 1.0, 1.0)])
    out = filter2d(img, kernels)
    assert torch.equal(out[0], img[0])
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(img[1:], (3, 3, 3, 3), mode="reflect"),
                                     kernels[1].expand(3, 1, 7, 7), groups=3)
    torch.testing.assert_close(out[1:], ref)


def test_usm_sharpening_raises_contrast_at_edges_and_leaves_flat_areas() -> None:
    img = torch.full((1, 3, 64, 64), 0.3)
    img[..., 32:] = 0.7
    sharp = usm_sharp(img)
    assert float(sharp[0, 0, 10, 31]) < 0.3 and float(sharp[0, 0, 10, 32]) > 0.7  # overshoot at the edge
    assert float(sharp.min()) >= 0 and float(sharp.max()) <= 1
    assert torch.equal(usm_sharp(torch.full((1, 3, 64, 64), 0.5)), torch.full((1, 3, 64, 64), 0.5))


# --------------------------------------------------------------------------------------------- the dataset


def test_dataset_gives_8bit_crops_and_kernels_that_depend_only_on_the_key(tmp_path: Path) -> None:
    data = generate_example_data(tmp_path / "d", num_train=3, num_val=1, size=32, scale=4)
    ds = RealESRGANDataset(str(data["train_hr"]), scale=4, seed=1, gt_size=16, crop_pad_size=48,
                           blur_kernel_size=9, blur_kernel_size2=11)
    a, b, c = ds[(0, 4)], ds[(0, 4)], ds[(1, 4)]
    assert a["gt"].shape == (3, 48, 48) and a["gt"].dtype == torch.uint8  # reflect-padded from 32
    assert a["kernel1"].shape == (9, 9) and a["kernel2"].shape == (11, 11) and a["sinc_kernel"].shape == (11, 11)
    for key in ("gt", "kernel1", "kernel2", "sinc_kernel"):
        assert torch.equal(a[key], b[key]), key  # type: ignore[arg-type]
    assert not torch.equal(a["kernel1"], c["kernel1"])  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="training samples only"):
        RealESRGANDataset(str(data["train_hr"]), scale=4, train=False, gt_size=16)
    with pytest.raises(OptionError, match="kernel_prob2"):
        RealESRGANDataset(str(data["train_hr"]), scale=4, gt_size=16, kernel_prob2=(1.0,))
    with pytest.raises(OptionError, match="blur_kernel_size"):
        RealESRGANDataset(str(data["train_hr"]), scale=4, gt_size=16, blur_kernel_size=20)
    small = RealESRGANDataset(str(data["train_hr"]), scale=4, gt_size=16, crop_pad_size=64)
    with pytest.raises(OptionError, match="too small to pad"):
        small.verify_files()


# ------------------------------------------------------------------------------------------ tiny runs

# The tiny configuration of tests/tinyrun.py as a x4 Real-ESRGAN: 48x48 crops of 64x64 HR images degraded
# and cut to 32x32 GT patches, a 4-pair pool.
REAL: Dict[str, Any] = {
    "scale": 4,
    "model_type": "RealESRGANModel",
    "degradation": {"queue_size": 4, "gt_size": 32},
    "datasets.train": {"type": "RealESRGANDataset", "dataroot_gt": "x4/train/HR", "gt_size": 32,
                       "crop_pad_size": 48, "blur_kernel_size": 9, "blur_kernel_size2": 9, "use_hflip": True,
                       "use_rot": False, "batch_size_per_gpu": 2, "num_worker_per_gpu": 0},
    "datasets.val": {"type": "PairedImageDataset", "dataroot_gt": "x4/val/HR", "dataroot_lq": "x4/val/LR_x4"},
    "network_g": {"type": "MSRResNet", "num_feat": 8, "num_block": 1, "upscale": 4},
    "network_d": {"type": "UNetDiscriminatorSN", "num_feat": 4},
    "train.optim_d": {"type": "Adam", "lr": 1e-3},
    "train.gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
    "val.metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 4}},
}


def real_options(folder: Path, name: str, **changes: Any) -> Path:
    if not (folder / "x4").exists():
        generate_example_data(folder / "x4", num_train=5, num_val=1, size=64, scale=4)
    return write_options(folder, name, **{**REAL, **changes})


def test_sigterm_and_resume_of_a_tiny_realesrgan_is_bitwise(workdir: Path) -> None:
    """The pool fills in 2 iterations and then cycles; the stop falls after that, mid-epoch."""
    common = {"train.total_iter": 14, "train.ema_decay": 0.9, "logger.save_checkpoint_freq": 1000,
              "logger.print_freq": 1, "val.val_freq": 1000}
    ref = real_options(workdir, "ref", **common)
    assert train_in_process(ref) == 0
    opt = real_options(workdir, "sig", **common)
    stopped = stop_with_sigterm(workdir, opt, "iter 4]")
    assert 4 <= stopped["iteration"] < 14
    pool = stopped["model"]["pair_pool"]
    assert pool["filled"] == 4 and pool["gt"].shape == (4, 3, 32, 32) and pool["lq"].shape == (4, 3, 8, 8)
    assert pool["gt"].dtype == torch.uint8
    assert train_in_process(opt, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "ref", "sig", 14, ("networks", "ema", "optimizers", "pair_pool"))


def test_a_tiny_realesrnet_run_and_its_dry_run(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    from framework.cli import run_main, train_main

    opt = real_options(workdir, "net", **{"model_type": "RealESRNetModel", "network_d": ..., "train.optim_d": ...,
                                          "train.gan_opt": ..., "train.total_iter": 4,
                                          "degradation": {"queue_size": 0, "gt_usm": False}})
    capsys.readouterr()
    assert run_main(train_main, ["-opt", str(opt), "--dry-run", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "one batch (2, 3, 8, 8) -> (2, 3, 32, 32) (gt (2, 3, 48, 48))" in out, out
    assert train_in_process(opt) == 0
    state = load(workdir / "weights" / "net_iter_4.pt")
    assert state["model"]["pair_pool"] == {} and "net_d" not in state["model"]["networks"]


@pytest.mark.parametrize("changes,expect", [
    ({"model_type": "ESRGANModel"}, ["datasets.train.type", "RealESRGANDataset gives GT images only",
                                     "RealESRNetModel or RealESRGANModel"]),
    ({"datasets.train": {"type": "PairedImageDataset", "dataroot_gt": "data/train/HR",
                         "dataroot_lq": "data/train/LR_x2", "gt_size": 32}},
     ["datasets.train.type", "RealESRGANModel synthesises its LR inputs", "use RealESRGANDataset",
      "high_order_degradation: false"]),
    ({"degradation": {"queue_size": 5}}, ["degradation.queue_size", "not a multiple of the loader batch 2"]),
    ({"degradation": {"gt_size": 16}}, ["degradation.gt_size", "differs from datasets.train.gt_size 32"]),
    ({"degradation": {"jpeg_range": [30, 120]}}, ["degradation.jpeg_range", "<= 100"]),
    ({"degradation": {"resize_range": [0.5, 0.9]}}, ["degradation.resize_range", "must contain 1"]),
    ({"degradation": {"gaussian_noise_prob": 2}}, ["degradation.gaussian_noise_prob"]),
    ({"datasets.train.crop_pad_size": 30}, ["datasets.train.crop_pad_size", "multiple of scale 4"]),
    ({"degradation": {"high_order_degradation": False}}, ["datasets.train.type", "RealESRGANDataset gives GT images "
                                                          "only", "use RealESRGANPairedDataset"]),
    ({"datasets.train.dataroot_lq": "data/train/LR_x2"},
     ["datasets.train.dataroot_lq", "RealESRGANDataset reads HR images only and synthesises the LR inputs; "
                                    "remove dataroot_lq"]),
])
def test_realesrgan_option_errors_exit_2_with_one_line_each(workdir: Path, changes: dict, expect: list,
                                                            capsys: pytest.CaptureFixture) -> None:
    from framework.cli import run_main, train_main

    base = {k: (dict(v) if isinstance(v, dict) else v) for k, v in REAL.items()}
    if "datasets.train" not in changes:
        for key, value in changes.items():
            if key.startswith("datasets.train."):
                base["datasets.train"] = {**base["datasets.train"], key.split(".")[-1]: value}
        changes = {k: v for k, v in changes.items() if not k.startswith("datasets.train.")}
    if "degradation" in changes:
        changes = {**changes, "degradation": {**REAL["degradation"], **changes["degradation"]}}
    real_options(workdir, "x")
    path = write_options(workdir, "bad", **{**base, **changes})
    capsys.readouterr()
    assert run_main(train_main, ["-opt", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expect:
        assert text in err, f"{text!r} not in {err}"
    assert "did you mean" not in err
    assert not (workdir / "weights").exists() or not list((workdir / "weights").iterdir())


# ------------------------------------------------------------------------------ the examples, the grid tool

REPO = Path(__file__).resolve().parents[1]


def _example_x4(root: Path, num_val: int = 1) -> Dict[str, Any]:
    """datasets/example_x4 as make_example_data.py --scale 4 writes it (with the degraded val LR), smaller."""
    return generate_example_data(root / "datasets" / "example_x4", num_train=4, num_val=num_val, size=64, scale=4,
                                 degraded_val=True)


def test_show_degradations_writes_the_grid_for_the_example_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from framework.cli import run_main
    from framework.data.image_io import read_image
    from framework.tools import show_degradations

    _example_x4(tmp_path)
    monkeypatch.chdir(tmp_path)
    opt = str(REPO / "options/train/example_realesrnet.yml")
    assert run_main(show_degradations.main, ["-opt", opt, "--count", "3"]) == 0
    grid_file = tmp_path / "experiments" / "example_RealESRNet_x4_degradations.png"  # the default place
    grid = (read_image(str(grid_file)) * 255).round()
    tile = 64 + show_degradations.GAP
    assert grid.shape == (3, 3 * tile + 2, 5 * tile + 2)
    first = [grid[:, 2:66, 2 + c * tile:2 + c * tile + 64] for c in range(5)]
    assert not torch.equal(first[0], first[1])  # the LR input is not the GT
    assert int(first[2].max()) == 255 and int(first[2].min()) == 0  # a kernel, scaled to its range
    assert "one row per sample" in capsys.readouterr().out
    # the same draws again: the same image; an existing file is not replaced without --force
    assert run_main(show_degradations.main, ["-opt", opt, "--count", "3", "-o", "again.png"]) == 0
    assert (tmp_path / "again.png").read_bytes() == grid_file.read_bytes()
    assert run_main(show_degradations.main, ["-opt", opt, "-o", "again.png"]) == 2
    assert "--force" in capsys.readouterr().err
    assert run_main(show_degradations.main, ["-opt", str(REPO / "options/train/example.yml")]) == 2
    assert "RealESRNetModel / RealESRGANModel" in capsys.readouterr().err


def test_degrade_images_writes_deterministic_lr_of_the_right_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """scripts/degrade_images.py: 8-bit LR PNGs of HR / scale (HR cropped to a multiple of it), the same bytes on
    every run and whatever else is in the folder (the draws depend on (seed, name) only), other bytes for
    another seed; the example data's degraded val LR is this tool's output for the example options."""
    from framework.cli import run_main
    from framework.data.image_io import decode_file, write_image
    from framework.tools import degrade_images

    data = _example_x4(tmp_path, num_val=2)
    monkeypatch.chdir(tmp_path)
    hr = tmp_path / "hr"
    hr.mkdir()
    for path in sorted(data["val_hr"].iterdir()):
        (hr / path.name).write_bytes(path.read_bytes())
    odd = decode_file(str(data["val_hr"] / "0000.png"))[:, :62, :59]  # not multiples of 4: cropped to 60 x 56
    (hr / "sub").mkdir()
    write_image(odd, str(hr / "sub" / "odd.png"))
    opt = str(REPO / "options/train/example_realesrnet.yml")

    def degrade(out: str, *extra: str) -> Dict[str, bytes]:
        assert run_main(degrade_images.main, ["-opt", opt, "-i", str(hr), "-o", out, *extra]) == 0
        return {p.relative_to(tmp_path / out).as_posix(): p.read_bytes()
                for p in sorted((tmp_path / out).rglob("*")) if p.is_file()}

    first = degrade("lr")
    assert sorted(first) == ["0000.png", "0001.png", "sub/odd.png"]
    assert "wrote 3 LR x4 images to lr (seed 0" in capsys.readouterr().out
    for name, size in (("0000.png", (16, 16)), ("sub/odd.png", (15, 14))):
        lq = decode_file(str(tmp_path / "lr" / name))
        assert lq.dtype == torch.uint8 and tuple(lq.shape) == (3, *size)
    assert degrade("again") == first
    # the make_example_data.py set: the same pipeline, the same draws (seed 0, by name)
    for name in ("0000.png", "0001.png"):
        assert (data["val_lr_degraded"] / name).read_bytes() == first[name]
    # one image alone: the same bytes (its draws do not depend on the other images)
    (hr / "0001.png").unlink()
    (hr / "sub" / "odd.png").unlink()
    assert degrade("alone") == {"0000.png": first["0000.png"]}
    other = degrade("seed1", "--seed", "1")
    assert other["0000.png"] != first["0000.png"]
    hr_img = decode_file(str(hr / "0000.png"))
    assert not torch.equal(decode_file(str(tmp_path / "lr" / "0000.png")), hr_img[:, ::4, ::4])


def test_degrade_images_refuses_to_overwrite_without_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    from framework.cli import run_main
    from framework.tools import degrade_images

    data = _example_x4(tmp_path, num_val=2)
    monkeypatch.chdir(tmp_path)
    opt = str(REPO / "options/train/example_realesrnet.yml")
    out = tmp_path / "lr"
    out.mkdir()
    (out / "0001.png").write_bytes(b"mine")
    args = ["-opt", opt, "-i", str(data["val_hr"]), "-o", str(out)]
    assert run_main(degrade_images.main, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0001.png: exists" in err and "--force" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["0001.png"]  # nothing written
    assert (out / "0001.png").read_bytes() == b"mine"
    assert run_main(degrade_images.main, [*args, "--force"]) == 0
    assert (out / "0001.png").read_bytes() == (data["val_lr_degraded"] / "0001.png").read_bytes()
    # options of a model that trains on stored LR images; an output inside the input
    generate_example_data(tmp_path / "datasets" / "example", num_train=1, num_val=1, size=32)
    assert run_main(degrade_images.main, ["-opt", str(REPO / "options/train/example.yml"), "-i", str(data["val_hr"]),
                                          "-o", "x"]) == 2
    assert "RealESRNetModel / RealESRGANModel" in capsys.readouterr().err
    assert run_main(degrade_images.main, ["-opt", opt, "-i", str(data["val_hr"]), "-o",
                                          str(data["val_hr"] / "lr")]) == 2
    assert "inside the input folder" in capsys.readouterr().err


def test_two_stage_realesrgan_example_in_miniature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """options/train/example_realesrnet.yml, then example_realesrgan.yml from its .pth, both shortened."""
    import os

    import yaml

    from framework.cli import run_main, train_main

    _example_x4(tmp_path)
    monkeypatch.chdir(tmp_path)
    short = ["--no-progress", "--set", "val.val_freq=2", "--set", "logger.save_checkpoint_freq=2",
             "--set", "logger.use_tb_logger=false"]
    assert run_main(train_main, ["-opt", str(REPO / "options/train/example_realesrnet.yml"), *short,
                                 "--set", "train.total_iter=2"]) == 0
    gan = yaml.safe_load((REPO / "options/train/example_realesrgan.yml").read_text())
    pretrain = gan["path"]["pretrain_path"]
    assert pretrain == "weights/example_RealESRNet_x4_iter_800.pth"  # stage 1's last .pth, at its full length
    os.replace(tmp_path / "weights" / "example_RealESRNet_x4_iter_2.pth", tmp_path / pretrain)
    assert run_main(train_main, ["-opt", str(REPO / "options/train/example_realesrgan.yml"), *short,
                                 "--set", "train.total_iter=2"]) == 0
    pt = load(tmp_path / "weights" / f"{gan['name']}_iter_2.pt")
    assert set(pt["model"]["networks"]) == {"net_g", "net_d"}
    assert pt["model"]["pair_pool"]["filled"] == 8  # two batches of 4 into the pool of 16
