"""GAN fine-tuning (SRGANModel, ESRGANModel): loss values from their definitions, the step schedule
(net_d_iters / net_d_init_iters), exact resume after SIGTERM for both networks, checkpoint contents and the
discriminator export, pretrained weights for both networks, option errors, the VGG weights that are never
downloaded, LPIPS, and the two-stage example in miniature."""
from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import torch
import torchvision
import yaml
from torch.nn import functional as F
from torchvision.models import vgg as tv_vgg

from framework.cli import run_main, train_main
from framework.data.example_data import generate_example_data
from framework.errors import UserError
from framework.losses import GANLoss
from framework.perceptual import PerceptualLoss, gram_matrix

from .test_model_contract import _equal, assert_same_final_state
from .test_option_errors import assert_unchanged, assert_user_error, snapshot
from .tinyrun import REPO, load, run_train, stop_with_sigterm, train_in_process, write_options

# The tiny configuration of tests/tinyrun.py (16x16 patches) as an ESRGAN with a small U-Net discriminator.
GAN: Dict[str, Any] = {
    "model_type": "ESRGANModel",
    "network_d": {"type": "UNetDiscriminatorSN", "num_feat": 4},
    "train.optim_d": {"type": "Adam", "lr": 1e-3},
    "train.gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
}


def gan_options(folder: Path, name: str, **changes: Any) -> Path:
    return write_options(folder, name, **{**GAN, **changes})


# ------------------------------------------------------------------------------------------------ GANLoss

# Discriminator outputs x = [0.5, -1, 3]; softplus(t) = log(1 + e^t).
# vanilla (BCE with logits) real: mean(softplus(-x)) = (0.474077 + 1.313262 + 0.048587) / 3
#                           fake: mean(softplus(x))  = (0.974077 + 0.313262 + 3.048587) / 3
# with label y: mean(y * softplus(-x) + (1 - y) * softplus(x)); lsgan: mean((x - y)^2);
# wgan: -mean(x) real, mean(x) fake; wgan_softplus as vanilla with labels 1/0;
# hinge (discriminator): mean(relu(1 - x)) real, mean(relu(1 + x)) fake; (generator): -mean(x).
X = [0.5, -1.0, 3.0]
GAN_CASES = [
    # gan_type, kwargs, target_is_real, is_disc, expected
    ("vanilla", {}, True, True, 0.6119753410906905),
    ("vanilla", {}, False, True, 1.4453086744240238),
    ("vanilla", {"real_label_val": 0.9}, True, True, 0.6953086744240237),
    ("vanilla", {"fake_label_val": 0.1}, False, True, 1.3619753410906907),
    ("vanilla", {"loss_weight": 0.1}, True, False, 0.06119753410906905),
    ("vanilla", {"loss_weight": 0.1}, True, True, 0.6119753410906905),  # D's loss is never weighted
    ("lsgan", {}, True, True, 2.75),  # ((0.5-1)^2 + (-2)^2 + 2^2) / 3
    ("lsgan", {}, False, True, 3.4166666666666665),  # (0.25 + 1 + 9) / 3
    ("lsgan", {"real_label_val": 0.9}, True, True, 2.7266666666666666),
    ("lsgan", {"loss_weight": 2.0}, False, False, 6.833333333333333),
    ("wgan", {}, True, True, -0.8333333333333334),
    ("wgan", {}, False, True, 0.8333333333333334),
    ("wgan", {"loss_weight": 0.5}, True, False, -0.4166666666666667),
    ("wgan_softplus", {}, True, True, 0.6119753410906905),
    ("wgan_softplus", {}, False, True, 1.4453086744240238),
    ("hinge", {}, True, True, 0.8333333333333334),  # (0.5 + 2 + 0) / 3
    ("hinge", {}, False, True, 1.8333333333333333),  # (1.5 + 0 + 4) / 3
    ("hinge", {}, True, False, -0.8333333333333334),
    ("hinge", {"loss_weight": 0.1}, False, False, -0.08333333333333334),  # G: -mean(x), real or not
]


@pytest.mark.parametrize("gan_type,kwargs,real,is_disc,expected", GAN_CASES)
def test_gan_loss_values(gan_type: str, kwargs: dict, real: bool, is_disc: bool, expected: float) -> None:
    loss = GANLoss(gan_type, **kwargs)(torch.tensor(X, dtype=torch.float64).view(3, 1), real, is_disc=is_disc)
    assert loss.shape == () and math.isclose(float(loss), expected, rel_tol=1e-12, abs_tol=1e-12)


def test_gan_loss_rejects_unknown_type() -> None:
    with pytest.raises(UserError, match="gan_type"):
        GANLoss("wgan-gp")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ PerceptualLoss

# BasicSR's layer names on torchvision's `features` indices (conv, relu pairs and a pool after each block).
VGG19_INDEX = {"relu1_1": 1, "relu2_2": 8, "conv3_4": 16, "conv4_4": 25, "conv5_4": 34}
VGG16_INDEX = {"conv3_3": 14, "relu4_3": 22, "conv5_3": 28}
CFG = {"vgg16": "D", "vgg19": "E"}
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def random_vgg_file(path: Path, vgg_type: str = "vgg19", seed: int = 0) -> Dict[str, torch.Tensor]:
    """A VGG with fixed random weights, saved like torchvision's ImageNet file (``features.N.*`` keys)."""
    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in tv_vgg.make_layers(tv_vgg.cfgs[CFG[vgg_type]]).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def reference_features(state: Dict[str, torch.Tensor], vgg_type: str, x: torch.Tensor, index: int) -> torch.Tensor:
    """The output of torchvision's ``features[index]`` on ImageNet-normalised ``x``."""
    features = tv_vgg.make_layers(tv_vgg.cfgs[CFG[vgg_type]])
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    with torch.no_grad():
        return features[:index + 1]((x - MEAN) / STD)


def _images(seed: int = 1) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)


def test_gram_matrix_by_hand() -> None:
    x = torch.arange(8.0).view(1, 2, 2, 2)  # channels [0, 1, 2, 3] and [4, 5, 6, 7]; c*h*w = 8
    expected = torch.tensor([[[14.0, 38.0], [38.0, 126.0]]]) / 8
    assert torch.equal(gram_matrix(x), expected)


@pytest.mark.parametrize("criterion", ["l1", "l2", "fro"])
def test_perceptual_and_style_values(tmp_path: Path, criterion: str) -> None:
    state = random_vgg_file(tmp_path / "vgg19.pth")
    weights = {"relu2_2": 0.5, "conv5_4": 1.0}
    loss = PerceptualLoss(weights, "vgg19", perceptual_weight=2.0, style_weight=3.0, criterion=criterion,
                          weights_path=str(tmp_path / "vgg19.pth"))
    x, gt = _images()
    with torch.no_grad():
        percep, style = loss(x, gt)
    distance = {"l1": F.l1_loss, "l2": F.mse_loss, "fro": lambda a, b: torch.sqrt(((a - b) ** 2).sum())}[criterion]

    def gram(f: torch.Tensor) -> torch.Tensor:
        n, c, h, w = f.shape
        flat = f.reshape(n, c, h * w)
        return flat @ flat.transpose(1, 2) / (c * h * w)

    expected_p = expected_s = torch.tensor(0.0)
    for name, w in weights.items():
        fx = reference_features(state, "vgg19", x, VGG19_INDEX[name])
        fg = reference_features(state, "vgg19", gt, VGG19_INDEX[name])
        expected_p = expected_p + w * distance(fx, fg)
        expected_s = expected_s + w * distance(gram(fx), gram(fg))
    torch.testing.assert_close(percep, 2.0 * expected_p, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(style, 3.0 * expected_s, rtol=1e-5, atol=1e-6)


def test_perceptual_options_vgg16_range_norm_and_zero_weights(tmp_path: Path) -> None:
    state = random_vgg_file(tmp_path / "vgg16.pth", "vgg16", seed=4)
    x, gt = _images(2)
    loss = PerceptualLoss({"conv3_3": 1.0, "conv5_3": 0.25}, "vgg16", range_norm=True, style_weight=0.0,
                          weights_path=str(tmp_path / "vgg16.pth"))
    with torch.no_grad():
        percep, style = loss(x * 2 - 1, gt * 2 - 1)  # range_norm: inputs in [-1, 1]
    expected = sum(w * F.l1_loss(reference_features(state, "vgg16", x, VGG16_INDEX[n]),
                                 reference_features(state, "vgg16", gt, VGG16_INDEX[n]))
                   for n, w in {"conv3_3": 1.0, "conv5_3": 0.25}.items())
    torch.testing.assert_close(percep, expected, rtol=1e-5, atol=1e-6)
    assert style is None  # style_weight 0: no style term, as in BasicSR
    off, _ = PerceptualLoss({"relu4_3": 1.0}, "vgg16", perceptual_weight=0.0,
                            weights_path=str(tmp_path / "vgg16.pth"))(x, gt)
    assert off is None
    no_norm, _ = PerceptualLoss({"relu4_3": 1.0}, "vgg16", use_input_norm=False,
                                weights_path=str(tmp_path / "vgg16.pth"))(x, gt)
    features = tv_vgg.make_layers(tv_vgg.cfgs["D"])
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    with torch.no_grad():
        ref = F.l1_loss(features[:23](x), features[:23](gt))
    torch.testing.assert_close(no_norm, ref, rtol=1e-5, atol=1e-6)


def test_perceptual_gradients_reach_the_input_only(tmp_path: Path) -> None:
    random_vgg_file(tmp_path / "vgg19.pth")
    loss = PerceptualLoss({"conv2_2": 1.0}, weights_path=str(tmp_path / "vgg19.pth"))
    x, gt = _images()
    x.requires_grad_(True)
    percep, _ = loss(x, gt)
    percep.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())


def test_perceptual_reads_torchvisions_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url
    state = random_vgg_file(tmp_path / "torch" / "hub" / "checkpoints" / os.path.basename(url), seed=7)
    x, gt = _images()
    percep, _ = PerceptualLoss({"conv5_4": 1.0})(x, gt)
    expected = F.l1_loss(reference_features(state, "vgg19", x, 34), reference_features(state, "vgg19", gt, 34))
    torch.testing.assert_close(percep.detach(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(layer_weights={"con5_4": 1.0}), "did you mean 'conv5_4'"),
    (dict(layer_weights={"conv5_4": 1.0}, vgg_type="vgg20"), "vgg_type"),
    (dict(layer_weights={}), "layer_weights is empty"),
    (dict(layer_weights={"conv1_1": 1.0}, criterion="l3"), "criterion"),
])
def test_perceptual_bad_arguments(tmp_path: Path, kwargs: dict, needle: str) -> None:
    random_vgg_file(tmp_path / "vgg19.pth")
    with pytest.raises(UserError) as info:
        PerceptualLoss(weights_path=str(tmp_path / "vgg19.pth"), **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_perceptual_refuses_a_file_of_another_network(tmp_path: Path) -> None:
    random_vgg_file(tmp_path / "vgg16.pth", "vgg16")
    with pytest.raises(UserError, match="does not hold vgg19 features"):
        PerceptualLoss({"conv5_4": 1.0}, "vgg19", weights_path=str(tmp_path / "vgg16.pth"))


# ------------------------------------------------------------------------------------------------ training


def _optimizer_steps(state: Dict[str, Any]) -> int:
    """Adam's step count (every parameter of one optimizer steps together)."""
    steps = {int(s["step"]) for s in state["state"].values()}
    assert len(steps) == 1
    return steps.pop()


@pytest.mark.parametrize("net_d_iters,net_d_init_iters,g_steps", [(1, 0, 8), (2, 3, 3), (3, 0, 2), (1, 8, 0)])
def test_net_d_iters_and_init_iters_count_generator_and_discriminator_steps(
        workdir: Path, net_d_iters: int, net_d_init_iters: int, g_steps: int) -> None:
    """G steps when iteration % net_d_iters == 0 and iteration > net_d_init_iters (BasicSR); D every time."""
    opt = gan_options(workdir, "steps", **{"train.total_iter": 8, "train.net_d_iters": net_d_iters,
                                            "train.net_d_init_iters": net_d_init_iters, "model_type": "SRGANModel",
                                            "logger.print_freq": 1, "logger.save_checkpoint_freq": 100})
    assert train_in_process(opt) == 0
    state = load(workdir / "weights" / "steps_iter_8.pt")["model"]
    optimizers = state["optimizers"]
    assert _optimizer_steps(optimizers["optim_d"]) == 8
    if g_steps:
        assert _optimizer_steps(optimizers["optim_g"]) == g_steps
    else:
        assert not optimizers["optim_g"]["state"]  # never stepped
    # Both schedules advance every iteration, as BasicSR's update_learning_rate.
    assert state["schedulers"]["optim_g"]["last_epoch"] == state["schedulers"]["optim_d"]["last_epoch"] == 8
    log = next((workdir / "experiments" / "steps").glob("train_*.log")).read_text()
    g_lines = [line for line in log.splitlines() if "] lr " in line and "l_g_gan" in line]
    assert len(g_lines) == g_steps  # print_freq 1: the generator's losses appear exactly when it stepped
    assert all("l_d_real" in line and "out_d_fake" in line for line in log.splitlines() if "] lr " in line)


@pytest.mark.parametrize("scheduler_d,lr_d", [(None, 5e-4), ({"type": "MultiStepLR", "milestones": [1], "gamma": 0.1},
                                                            1e-4)])
def test_scheduler_drives_both_optimizers_unless_scheduler_d(workdir: Path, scheduler_d: Any, lr_d: float) -> None:
    opt = gan_options(workdir, "sched", **{"train.total_iter": 3, "train.warmup_iter": 0,
                                           "train.scheduler": {"type": "MultiStepLR", "milestones": [2], "gamma": 0.5},
                                           "train.scheduler_d": scheduler_d, "logger.save_checkpoint_freq": 100})
    assert train_in_process(opt) == 0
    optimizers = load(workdir / "weights" / "sched_iter_3.pt")["model"]["optimizers"]
    assert math.isclose(optimizers["optim_g"]["param_groups"][0]["lr"], 5e-4)
    assert math.isclose(optimizers["optim_d"]["param_groups"][0]["lr"], lr_d)


def test_checkpoint_holds_both_networks_and_the_pth_the_generator(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    opt = gan_options(workdir, "ckpt", **{"train.total_iter": 4, "train.ema_decay": 0.5, "logger.print_freq": 1})
    assert train_in_process(opt) == 0
    pt = load(workdir / "weights" / "ckpt_iter_4.pt")
    model = pt["model"]
    assert set(model["networks"]) == {"net_g", "net_d"} and set(model["ema"]) == {"net_g"}
    assert set(model["optimizers"]) == set(model["schedulers"]) == {"optim_g", "optim_d"}
    assert any(k.endswith("weight_u") for k in model["networks"]["net_d"])  # spectral norm state is saved
    pth = load(workdir / "weights" / "ckpt_iter_4.pth")
    assert list(pth) == ["params"] and _equal(pth["params"], model["ema"]["net_g"])
    assert not _equal(pth["params"], model["networks"]["net_g"])

    from framework.tools import checkpoint_tool
    out = workdir / "d.pth"
    capsys.readouterr()
    assert run_main(checkpoint_tool.main, ["export", str(workdir / "weights" / "ckpt_iter_4.pt"), "--net-d",
                                           "-o", str(out)]) == 0
    exported = load(out)
    assert list(exported) == ["params"] and _equal(exported["params"], model["networks"]["net_d"])
    assert run_main(checkpoint_tool.main, ["inspect", str(workdir / "weights" / "ckpt_iter_4.pt")]) == 0
    assert "network_d:   UNetDiscriminatorSN" in capsys.readouterr().out
    assert run_main(checkpoint_tool.main, ["export", str(workdir / "weights" / "ckpt_iter_4.pt"), "--net-d",
                                           "--ema", "-o", str(workdir / "x.pth")]) == 2
    sr = write_options(workdir, "sr", **{"train.total_iter": 2})
    assert train_in_process(sr) == 0
    capsys.readouterr()
    assert run_main(checkpoint_tool.main, ["export", str(workdir / "weights" / "sr_iter_2.pt"), "--net-d"]) == 2
    assert "no discriminator" in capsys.readouterr().err


@pytest.mark.parametrize("model_type,discriminator", [
    ("ESRGANModel", {"type": "UNetDiscriminatorSN", "num_feat": 4}),
    ("SRGANModel", {"type": "VGGStyleDiscriminator", "num_feat": 2, "input_size": 128}),
])
def test_stop_and_resume_is_bitwise_for_both_networks(workdir: Path, model_type: str, discriminator: dict) -> None:
    """Stopped at 3 (mid-epoch) and resumed to 6 == uninterrupted, for G, its EMA, D and both optimizers."""
    common = {"model_type": model_type, "network_d": discriminator, "train.total_iter": 6, "train.ema_decay": 0.9,
              "train.net_d_init_iters": 1, "logger.save_checkpoint_freq": 100, "train.grad_clip_norm": 0.5}
    if discriminator["type"] == "VGGStyleDiscriminator":  # it judges 128x128 patches
        common.update({"datasets.train.gt_size": 128, "datasets.train.dataroot_gt": "big/train/HR",
                       "datasets.train.dataroot_lq": "big/train/LR_x2"})
        generate_example_data(workdir / "big", num_train=3, num_val=1, size=128, scale=2)
    full, part = gan_options(workdir, "full", **common), gan_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=3"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "full", "part", 6, ("networks", "ema", "optimizers", "schedulers"))


def test_sigterm_and_resume_of_a_tiny_esrgan_is_bitwise(workdir: Path) -> None:
    common = {"train.total_iter": 30, "train.ema_decay": 0.9, "logger.save_checkpoint_freq": 1000,
              "logger.print_freq": 1, "val.val_freq": 1000}
    ref = gan_options(workdir, "ref", **common)
    assert train_in_process(ref) == 0
    opt = gan_options(workdir, "sig", **common)
    assert 5 <= stop_with_sigterm(workdir, opt, "iter 5]")["iteration"] < 30
    assert train_in_process(opt, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "ref", "sig", 30, ("networks", "ema", "optimizers"))


def test_pretrain_paths_load_generator_and_discriminator(workdir: Path) -> None:
    """Stage 1 (SRModel) .pth -> G; a GAN run's .pt -> D (path.pretrain_path_d). With net_d_init_iters the
    generator does not step, and with lr 0 the discriminator's weights do not move: both equal their sources."""
    assert train_in_process(write_options(workdir, "psnr", **{"train.total_iter": 2})) == 0
    assert train_in_process(gan_options(workdir, "gan1", **{"train.total_iter": 2})) == 0
    opt = gan_options(workdir, "gan2", **{
        "train.total_iter": 1, "train.net_d_init_iters": 1, "train.optim_d": {"type": "Adam", "lr": 0.0},
        "path.pretrain_path": "weights/psnr_iter_2.pth", "path.pretrain_path_d": "weights/gan1_iter_2.pt",
        "logger.save_checkpoint_freq": 1})
    assert train_in_process(opt) == 0
    log = next((workdir / "experiments" / "gan2").glob("train_*.log")).read_text()
    assert "Loaded pretrained weights from weights/psnr_iter_2.pth (strict_load: True)" in log
    assert "pretrain: all 12 tensors of net_g loaded" in log
    assert "Loaded pretrained weights from weights/gan1_iter_2.pt into net_d" in log
    after = load(workdir / "weights" / "gan2_iter_1.pt")["model"]["networks"]
    assert _equal(after["net_g"], load(workdir / "weights" / "psnr_iter_2.pth")["params"])
    source_d = load(workdir / "weights" / "gan1_iter_2.pt")["model"]["networks"]["net_d"]
    for key, value in source_d.items():
        if not key.endswith(("weight_u", "weight_v")):  # power-iteration vectors move with every forward
            assert torch.equal(after["net_d"][key], value), key


# ------------------------------------------------------------------------------------------------ option errors


@pytest.fixture()
def error_workdir(workdir: Path) -> Path:
    for out in ("weights", "experiments"):
        (workdir / out).mkdir(exist_ok=True)
        (workdir / out / "sentinel.txt").write_text("sentinel\n")
    return workdir


GAN_ERRORS = [
    pytest.param({"model_type": "SRModel", "network_d": GAN["network_d"]}, ["network_d", "SRModel does not use it"],
                 id="srmodel-with-network_d"),
    pytest.param({"train.gan_opt": ...}, ["train.gan_opt", "missing required key for ESRGANModel", "GANLoss"],
                 id="gan-without-gan_opt"),
    pytest.param({"network_d": ...}, ["network_d", "missing required key for ESRGANModel"], id="gan-without-network_d"),
    pytest.param({"network_d": {"type": "VGGStyleDiscriminator", "input_size": 128}},
                 ["network_d.input_size", "gt_size is 16"], id="vgg-disc-vs-gt_size"),
    pytest.param({"network_d": {"type": "UNetDiscriminatorSN", "num_feet": 4}}, ["network_d.num_feet", "num_feat"],
                 id="disc-arg-typo"),
    pytest.param({"path.pretrain_network_d": "x.pth"}, ["path.pretrain_network_d", "pretrain_path_d"],
                 id="basicsr-pretrain_network_d"),
    pytest.param({"path.pretrain_path_d": "missing_d.pth"}, ["path.pretrain_path_d", "does not exist"],
                 id="pretrain_path_d-missing"),
    pytest.param({"train.gan_opt": {"type": "GANLoss", "gan_type": "ragan"}}, ["train.gan_opt.gan_type", "hinge"],
                 id="gan_type-unknown"),
    pytest.param({"train.net_d_iters": 0}, ["train.net_d_iters", "at least 1"], id="net_d_iters-zero"),
    pytest.param({"train.perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1},
                                           "weights_path": "nowhere/vgg19.pth"}},
                 ["train.perceptual_opt", "nowhere/vgg19.pth does not exist"], id="vgg-weights_path-missing"),
]


def test_an_unknown_discriminator_is_one_line_not_also_a_missing_one(error_workdir: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    opt = gan_options(error_workdir, "bad", **{"network_d": {"type": "FooDiscriminator"}})
    capsys.readouterr()
    rc = run_main(train_main, ["-opt", str(opt), "--no-progress"])
    err = capsys.readouterr().err
    assert_user_error(rc, err, ["network_d.type: arch 'FooDiscriminator' is not registered"], "unknown network_d")
    assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize("changes,expect", GAN_ERRORS)
def test_gan_option_errors_exit_2_and_write_nothing(error_workdir: Path, changes: dict, expect: list,
                                                    capsys: pytest.CaptureFixture, request) -> None:
    opt = gan_options(error_workdir, "bad", **changes)
    before = snapshot(error_workdir)
    capsys.readouterr()
    rc = run_main(train_main, ["-opt", str(opt), "--no-progress"])
    _out, err = capsys.readouterr()
    label = request.node.callspec.id
    assert_user_error(rc, err, expect, label)
    assert_unchanged(before, snapshot(error_workdir), label)


def test_missing_vgg_weights_give_one_line_and_write_nothing(workdir: Path) -> None:
    """No file in the torch cache and no network: train.py stops at the option checks with one line naming the
    file and where it goes; no folder is created."""
    torch_home = workdir / "empty_torch_home"
    opt = gan_options(workdir, "percep", **{"train.perceptual_opt": {
        "type": "PerceptualLoss", "layer_weights": {"conv5_4": 1.0}, "vgg_type": "vgg19"}})
    result = run_train(workdir, ["-opt", str(opt)], env={"TORCH_HOME": str(torch_home)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    target = str(torch_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    assert "percep.yml:" in lines[0] and "train.perceptual_opt" in lines[0]
    assert target in lines[0] and "weights_path" in lines[0] and "IMAGENET1K_V1" in lines[0]
    assert not (workdir / "weights").exists() and not (workdir / "experiments").exists()
    assert not torch_home.exists()  # nothing downloaded, not even a cache folder made


LOGGED = ("l_g_pix", "l_g_percep", "l_g_style", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake")


def test_a_gan_run_with_the_perceptual_loss_from_the_cache(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(workdir / "torch"))
    random_vgg_file(workdir / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    opt = gan_options(workdir, "percep", **{"train.total_iter": 2, "logger.print_freq": 1,
                                            "logger.use_tb_logger": True,
                                            "train.perceptual_opt": {"type": "PerceptualLoss",
                                                                     "layer_weights": {"conv3_4": 1.0},
                                                                     "style_weight": 1.0}})
    assert train_in_process(opt) == 0
    log = next((workdir / "experiments" / "percep").glob("train_*.log")).read_text()
    iter_lines = [line for line in log.splitlines() if "] lr " in line]
    assert iter_lines and all(all(f"{name} " in line for name in LOGGED) for line in iter_lines)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(workdir / "experiments" / "percep" / "tb_logger"))
    events.Reload()
    assert {f"losses/{name}" for name in LOGGED} <= set(events.Tags()["scalars"])
    saved = load(workdir / "weights" / "percep_iter_2.pt")["model"]
    assert set(saved["networks"]) == {"net_g", "net_d"}  # the frozen VGG is no part of the checkpoint


def test_srmodel_takes_a_perceptual_loss_as_basicsr_does(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """BasicSR's SRModel: pixel_opt, perceptual_opt or both (l_pix, l_percep, l_style); neither is an error."""
    random_vgg_file(workdir / "vgg19.pth")
    percep = {"type": "PerceptualLoss", "layer_weights": {"conv2_2": 1.0}, "style_weight": 0.5,
              "weights_path": str(workdir / "vgg19.pth")}
    opt = write_options(workdir, "srp", **{"train.total_iter": 2, "logger.print_freq": 1,
                                           "train.perceptual_opt": percep})
    assert train_in_process(opt) == 0
    log = next((workdir / "experiments" / "srp").glob("train_*.log")).read_text()
    assert all(f"{name} " in line for line in log.splitlines() if "] lr " in line
               for name in ("l_pix", "l_percep", "l_style"))
    none = write_options(workdir, "none", **{"train.pixel_opt": None})
    assert train_in_process(none) == 2
    err = capsys.readouterr().err
    assert "train.pixel_opt: missing required key for SRModel or train.perceptual_opt" in err, err


# ------------------------------------------------------------------------------------------------ LPIPS

HAS_LPIPS = importlib.util.find_spec("lpips") is not None


def test_lpips_asked_for_without_the_package_is_an_option_error(error_workdir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from framework import lpips_metric

    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips -> ImportError
    lpips_metric.lpips_model.cache_clear()
    opt = gan_options(error_workdir, "lp", **{"val.metrics": {"lpips": {"type": "calculate_lpips"}}})
    before = snapshot(error_workdir)
    capsys.readouterr()
    assert run_main(train_main, ["-opt", str(opt), "--no-progress"]) == 2
    assert_user_error(2, capsys.readouterr().err, ["val.metrics.lpips", "pip install lpips"], "lpips-missing")
    assert_unchanged(before, snapshot(error_workdir), "lpips-missing")
    # Not asked for: the same run without the metric trains.
    assert train_in_process(gan_options(error_workdir, "nolp", **{"train.total_iter": 1})) == 0


@pytest.mark.skipif(not HAS_LPIPS, reason="the optional lpips package is not installed")
def test_lpips_equals_the_reference_package_and_decides_the_best_as_lower(workdir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import lpips

    from framework import lpips_metric
    from framework.registry import METRIC_REGISTRY

    home = workdir / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    lpips_metric.lpips_model.cache_clear()
    opt = gan_options(workdir, "lp", **{"val.metrics": {"lpips": {"type": "calculate_lpips"}}})
    assert run_main(train_main, ["-opt", str(opt), "--dry-run", "--no-progress"]) == 2  # backbone not cached
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)  # torchvision's AlexNet with fixed random weights, under torchvision's file name
    torch.save(torchvision.models.alexnet().state_dict(), home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    reference = lpips.LPIPS(net="alex", verbose=False)  # the package's own loading, from the same cache file
    g = torch.Generator().manual_seed(1)
    a, b = (torch.randint(0, 256, (3, 40, 36), generator=g, dtype=torch.uint8) for _ in range(2))
    with torch.no_grad():
        expected = float(reference(a[None].float() / 127.5 - 1, b[None].float() / 127.5 - 1))
    assert math.isclose(METRIC_REGISTRY.get("calculate_lpips")(a, b), expected, rel_tol=1e-5)
    assert METRIC_REGISTRY.get("lpips")(a, a) == 0.0
    with pytest.raises(ValueError, match="too small"):
        METRIC_REGISTRY.get("lpips")(a[:, :20, :20], b[:, :20, :20])
    assert train_in_process(gan_options(workdir, "lp", **{
        "train.total_iter": 4, "val.val_freq": 2, "val.metrics": {"lpips": {"type": "calculate_lpips"}}})) == 0
    best = load(workdir / "weights" / "lp_best.pt")["best"]["lpips"]
    history = [line for line in next((workdir / "experiments" / "lp").glob("train_*.log")).read_text().splitlines()
               if line.split(" INFO: ")[-1].startswith("Validation val @ iter")]
    values = {int(line.split("iter ")[1].split(":")[0]): float(line.rsplit("lpips ", 1)[1]) for line in history}
    assert best["iteration"] == min(values, key=lambda it: (values[it], it))


# ------------------------------------------------------------------------------------------------ the example


def test_two_stage_example_in_miniature(workdir: Path) -> None:
    """options/train/example.yml, then options/train/example_gan.yml from its .pth, both shortened; the log of
    stage 2 names the pretrained file and the load report."""
    generate_example_data(workdir / "datasets" / "example", num_train=4, num_val=2, size=64, scale=2)
    stage1 = run_main(train_main, ["-opt", str(REPO / "options/train/example.yml"), "--no-progress",
                                   "--set", "train.total_iter=4", "--set", "val.val_freq=4",
                                   "--set", "logger.save_checkpoint_freq=4", "--set", "logger.use_tb_logger=false",
                                   "--set", "datasets.train.batch_size_per_gpu=2"])
    assert stage1 == 0
    gan = yaml.safe_load((REPO / "options/train/example_gan.yml").read_text())
    pretrain = gan["path"]["pretrain_path"]
    assert pretrain == "weights/example_MSRResNet_x2_iter_600.pth"  # stage 1's last .pth, at its full length
    os.replace(workdir / "weights" / "example_MSRResNet_x2_iter_4.pth", workdir / pretrain)
    stage2 = run_main(train_main, ["-opt", str(REPO / "options/train/example_gan.yml"), "--no-progress",
                                   "--set", "train.total_iter=2", "--set", "val.val_freq=2",
                                   "--set", "logger.save_checkpoint_freq=2", "--set", "logger.use_tb_logger=false",
                                   "--set", "datasets.train.batch_size_per_gpu=2"])
    assert stage2 == 0
    log = next((workdir / "experiments" / gan["name"]).glob("train_*.log")).read_text()
    assert f"Loaded pretrained weights from {pretrain} (strict_load: True)" in log
    assert "pretrain: all" in log and "tensors of net_g loaded" in log
    pt = load(workdir / "weights" / f"{gan['name']}_iter_2.pt")
    assert set(pt["model"]["networks"]) == {"net_g", "net_d"}


# BasicSR 1.4.2's options/train/ESRGAN/train_ESRGAN_x4.yml, its GAN parts as written there.
BASICSR_ESRGAN = """
model_type: ESRGANModel
network_d:
  type: VGGStyleDiscriminator
  num_in_ch: 3
  num_feat: 64
path:
  pretrain_network_g: experiments/051_RRDBNet_PSNR/models/net_g_1000000.pth
  strict_load_g: true
  resume_state: ~
train:
  ema_decay: 0.999
  optim_g: {type: Adam, lr: !!float 1e-4, weight_decay: 0, betas: [0.9, 0.99]}
  optim_d: {type: Adam, lr: !!float 1e-4, weight_decay: 0, betas: [0.9, 0.99]}
  scheduler: {type: MultiStepLR, milestones: [50000, 100000, 200000, 300000], gamma: 0.5}
  total_iter: 400000
  warmup_iter: -1  # no warm up
  pixel_opt: {type: L1Loss, loss_weight: !!float 1e-2, reduction: mean}
  perceptual_opt:
    type: PerceptualLoss
    layer_weights:
      'conv5_4': 1  # before relu
    vgg_type: vgg19
    use_input_norm: true
    range_norm: false
    perceptual_weight: 1.0
    style_weight: 0
    criterion: l1
  gan_opt: {type: GANLoss, gan_type: vanilla, real_label_val: 1.0, fake_label_val: 0.0, loss_weight: !!float 5e-3}
  net_d_iters: 1
  net_d_init_iters: 0
"""


def test_a_basicsr_esrgan_file_needs_only_the_psnr_renames(tmp_path: Path) -> None:
    """scripts/convert_options.py renames the path keys (as for a PSNR file); every GAN key stays as written."""
    from framework.options import load_options, read_source
    from framework.tools.convert_options import convert

    gan = yaml.safe_load(BASICSR_ESRGAN)
    gan["path"].update({"pretrain_network_d": None, "strict_load_d": True})
    written = _with_tiny_rest(tmp_path, gan)
    with pytest.raises(UserError) as info:  # as written: the BasicSR path keys, each named with ours
        load_options(str(written))
    assert all(f"'{ours}' here" in str(info.value) for ours in ("pretrain_path", "pretrain_path_d", "resume_path"))
    conversion = convert(read_source(str(written)))
    changed = {change.text.split(": ")[1] for change in conversion.changes}
    assert changed == {"path.pretrain_network_g", "path.strict_load_g", "path.resume_state", "path.pretrain_network_d",
                       "path.strict_load_d"}, conversion.changes
    written.write_text(conversion.text)
    # every GAN key as BasicSR writes it, with BasicSR's patch size (VGGStyleDiscriminator judges 128x128)
    options = load_options(str(written), ["datasets.train.gt_size=128"])
    assert options.train is not None and options.train.gan_opt is not None and options.network_d is not None
    assert options.train.perceptual_opt is not None
    assert dict(options.train.perceptual_opt.kwargs["layer_weights"]) == {"conv5_4": 1}
    assert (options.train.net_d_iters, options.train.net_d_init_iters) == (1, 0)


def _with_tiny_rest(folder: Path, gan: Dict[str, Any]) -> Path:
    """The GAN parts over the tiny configuration (data, generator, validation)."""
    opt = yaml.safe_load(write_options(folder, "basicsr").read_text())
    opt.update({k: v for k, v in gan.items() if k != "train"})
    opt["train"] = gan["train"]
    path = folder / "basicsr_esrgan.yml"
    path.write_text(yaml.safe_dump(opt))
    return path
