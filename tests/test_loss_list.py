"""``train.losses``, traiNNer-redux's list: its names and keys as its templates write them, one construction
path with BasicSR's keys, weight 0 = not built, a log name per loss, the GAN entry driving the
discriminator, the dunet discriminator, option errors; and a GAN run with traiNNer-redux's default loss list
that stops and resumes bitwise."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import torch

from framework.archs.dunet_arch import DUnet
from framework.cli import run_main, train_main
from framework.loss_set import GeneratorLosses, all_entries
from framework.options import validate

from .test_gan import error_workdir, random_vgg_file  # noqa: F401  (fixture)
from .test_model_contract import assert_same_final_state
from .test_option_errors import assert_unchanged, assert_user_error, snapshot
from .tinyrun import tiny_options, train_in_process, write_options

# The loss list of traiNNer-redux's GAN templates (nonzero: charbonnier, MS-SSIM, perceptual, HSLuv, GAN; the
# others one edit away at weight 0), with its discriminator.
REDUX_LOSSES: List[Dict[str, Any]] = [
    {"type": "charbonnierloss", "loss_weight": 1.0},
    {"type": "mssimloss", "loss_weight": 1.0},
    {"type": "perceptualloss", "criterion": "pdl+l1", "loss_weight": 0.03},
    {"type": "hsluvloss", "criterion": "charbonnier", "loss_weight": 1.0},
    {"type": "ganloss", "gan_type": "vanilla", "loss_weight": 0.1},
    {"type": "distsloss", "loss_weight": 0},  # built only at a nonzero weight (it needs its weight files)
    {"type": "ldlloss", "loss_weight": 0},
    {"type": "ffloss", "loss_weight": 0},
    {"type": "cosimloss", "loss_weight": 0},
    {"type": "fliploss", "loss_weight": 0},
    {"type": "sobeledgeloss", "loss_weight": 0},
    {"type": "contextualloss", "loss_weight": 0},  # not provided here: skipped at weight 0
]
REDUX_GAN: Dict[str, Any] = {
    "model_type": "ESRGANModel",
    "network_d": {"type": "dunet", "num_feat": 4},
    "train.optim_d": {"type": "AdamW", "lr": 1e-3},
    "train.pixel_opt": ...,
    "train.losses": REDUX_LOSSES,
}
LOGGED = ("l_g_charbonnier", "l_g_mssim", "l_g_percep", "l_g_hsluv", "l_g_gan", "l_d_real", "l_d_fake")


def _train(raw: Dict[str, Any]) -> Any:
    problems: list = []
    options = validate(raw, problems)
    assert not problems, problems
    assert options is not None and options.train is not None
    return options.train


def test_names_match_ignoring_case_and_weight_zero_is_not_built() -> None:
    raw = tiny_options()
    raw.update(model_type="ESRGANModel", network_d={"type": "dunet", "num_feat": 4})
    raw["train"].update(optim_d={"type": "Adam", "lr": 1e-3}, losses=REDUX_LOSSES)
    train = _train(raw)
    # registered spellings; a loss not provided here stays at weight 0 (never built) so indices match the file
    assert [c.type for c in train.losses] == ["CharbonnierLoss", "MSSIMLoss", "PerceptualLoss", "HSLuvLoss",
                                              "GANLoss", "DISTSLoss", "LDLLoss", "FFLoss", "CosimLoss", "FLIPLoss",
                                              "SobelEdgeLoss", "contextualloss"]
    built: List[str] = []
    losses = GeneratorLosses(all_entries(train.pixel_opt, train.perceptual_opt, train.gan_opt, train.losses),
                             lambda entry: built.append(entry.name) or torch.nn.Identity())
    assert built == ["pix", "charbonnier", "mssim", "percep", "hsluv", "gan"]  # BasicSR's pixel_opt first
    assert losses.gan is not None and not losses.needs_ema_output


def test_one_path_for_basicsr_keys_and_the_list_with_names_per_loss() -> None:
    raw = tiny_options()
    raw["train"]["losses"] = [{"type": "L1Loss", "loss_weight": 0.5}, {"type": "l1loss"},
                              {"type": "sobeledgeloss", "loss_weight": 2}]
    train = _train(raw)
    entries = all_entries(train.pixel_opt, train.perceptual_opt, train.gan_opt, train.losses)
    assert [(e.name, e.key, e.weight) for e in entries] == [
        ("pix", ("pixel_opt",), 1.0), ("l1", ("losses", 0), 0.5), ("l1_2", ("losses", 1), 1.0),
        ("sobeledge", ("losses", 2), 2.0)]
    output, gt = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    from framework.registry import LOSS_REGISTRY

    terms = GeneratorLosses(entries, lambda e: e.component.build(LOSS_REGISTRY)).terms(
        output, lambda kind: gt, lambda: output)
    l1 = (output - gt).abs().mean()
    torch.testing.assert_close(terms["pix"], l1)
    torch.testing.assert_close(terms["l1"], 0.5 * l1)
    torch.testing.assert_close(terms["l1_2"], l1)
    assert set(terms) == {"pix", "l1", "l1_2", "sobeledge"}


def test_dunet_keeps_traiNNer_redux_parameter_names() -> None:
    net = DUnet(3, 8)
    keys = set(net.state_dict())
    assert {"in_to_dim.weight", "e_x1.0.parametrizations.weight.original", "e_x1.0.parametrizations.weight.0._u",
            "up1.0.offset.weight", "up1.0.scope.weight", "up1.0.init_pos", "up1.1.parametrizations.weight.original",
            "end_conv.0.parametrizations.weight.original", "end_conv.4.weight", "end_conv.4.bias"} <= keys
    assert net(torch.rand(2, 3, 16, 24)).shape == (2, 1, 16, 24)  # one judgement per pixel


def test_srmodel_trains_on_the_loss_family_and_logs_each(workdir: Path) -> None:
    losses = [{"type": "msssiml1loss", "loss_weight": 1.0}, {"type": "ldlloss", "loss_weight": 1.0},
              {"type": "ffloss", "loss_weight": 0.2}, {"type": "cosimloss", "loss_weight": 0.5},
              {"type": "sobeledgeloss", "loss_weight": 1.0}, {"type": "fliploss", "loss_weight": 1.0},
              {"type": "hsluvloss", "loss_weight": 0}]
    opt = write_options(workdir, "family", **{"train.pixel_opt": ..., "train.losses": losses,
                                              "train.ema_decay": 0.9, "train.total_iter": 2,
                                              "logger.print_freq": 1})
    assert train_in_process(opt) == 0
    log = next((workdir / "experiments" / "family").glob("train_*.log")).read_text()
    lines = [line for line in log.splitlines() if "] lr " in line]
    assert len(lines) == 2
    for line in lines:
        assert all(f"{name} " in line for name in ("l_msssiml1", "l_ldl", "l_ff", "l_cosim", "l_sobeledge", "l_flip"))
        assert "l_hsluv" not in line and "l_pix" not in line


def test_traiNNer_redux_default_losses_gan_run_stops_and_resumes_bitwise(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The templates' loss list with dunet (the perceptual loss on a VGG with fixed random weights in the torch
    cache, where torchvision's ImageNet file would be): stopped at 3 and resumed to 6 == uninterrupted."""
    monkeypatch.setenv("TORCH_HOME", str(workdir / "torch"))
    random_vgg_file(workdir / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    common = {**REDUX_GAN, "train.total_iter": 6, "train.ema_decay": 0.9, "logger.save_checkpoint_freq": 100,
              "logger.print_freq": 1}
    full, part = write_options(workdir, "full", **common), write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=3"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "full", "part", 6, ("networks", "ema", "optimizers", "schedulers"))
    log = next((workdir / "experiments" / "full").glob("train_*.log")).read_text()
    lines = [line for line in log.splitlines() if "] lr " in line]
    assert len(lines) == 6 and all(all(f"{name} " in line for name in LOGGED) for line in lines)
    assert not any(name in log for name in ("l_g_ldl", "l_g_ff ", "l_g_cosim", "l_g_sobeledge", "l_g_pix",
                                            "l_g_dists", "l_g_flip"))


LIST_ERRORS = [
    pytest.param({"train.losses": [{"type": "contextualloss", "loss_weight": 0.3}]},
                 ["train.losses[0].type", "'contextualloss' is a traiNNer-redux loss this trainer does not provide",
                  "not implemented", "hsluvloss"], id="not-provided-nonzero"),
    pytest.param({"train.losses": [{"type": "distsloss", "loss_weight": 0.3,
                                    "weights_path": "vgg16.pth"}]},
                 ["train.losses[0]", "dists_weights.pt does not exist", "dists_weights_path"],
                 id="dists-without-its-weights"),
    pytest.param({"train.losses": [{"type": "l3loss"}]}, ["train.losses[0].type", "not registered"],
                 id="unknown-loss"),
    pytest.param({"train.losses": [{"type": "hsluvloss", "loss_wieght": 1.0}]},
                 ["train.losses[0].loss_wieght", "HSLuvLoss has no argument", "loss_weight"], id="key-typo"),
    pytest.param({"train.losses": {"type": "l1loss"}}, ["train.losses", "expected a list"], id="not-a-list"),
    pytest.param({"train.losses": [{"type": "ganloss", "loss_weight": 0.1}]},
                 ["train.losses[0].type", "SRModel does not use a GAN loss"], id="gan-in-srmodel"),
    pytest.param({"train.losses": [{"type": "ldlloss", "loss_weight": 1.0}]},
                 ["train.losses[0].type", "set train.ema_decay"], id="ldl-without-ema"),
    pytest.param({"train.pixel_opt": ..., "train.losses": [{"type": "l1loss", "loss_weight": 0}]},
                 ["train.losses", "every loss has loss_weight 0"], id="all-zero"),
    pytest.param({"train.losses": [{"type": "contextualloss", "loss_weight": 0},
                                    {"type": "ffloss", "patch_factor": 0}]},
                 ["train.losses[1].patch_factor", "at least 1"], id="index-after-a-skipped-entry"),
    pytest.param({"train.pixel_opt": {"type": "LDLLoss"}, "train.ema_decay": 0.9},
                 ["train.pixel_opt.type", "not a pixel loss", "list it in train.losses"], id="ldl-as-pixel_opt"),
    pytest.param({"train.pixel_opt": {"type": "HSLuvLoss", "loss_weight": 0.5}, "train.total_iter": 0},
                 ["train.total_iter", "at least 1"], id="family-loss-as-pixel_opt-is-fine"),
    pytest.param({"train.losses": [{"type": "hsluvloss", "criterion": "huber"}]},
                 ["train.losses[0].criterion", "huber"], id="bad-criterion"),
]


@pytest.mark.parametrize("changes,expect", LIST_ERRORS)
def test_loss_list_errors_exit_2_and_write_nothing(error_workdir: Path, changes: dict,  # noqa: F811
                                                   expect: list, capsys: pytest.CaptureFixture, request,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(error_workdir / "no_torch_home"))
    random_vgg_file(error_workdir / "vgg16.pth", "vgg16")
    opt = write_options(error_workdir, "bad", **changes)
    _check_error(error_workdir, opt, expect, capsys, request.node.callspec.id)


GAN_LIST_ERRORS = [
    pytest.param({"train.gan_opt": {"type": "GANLoss", "loss_weight": 0.1}},
                 ["train.losses[2].type", "a second GAN loss"], id="two-gan-losses"),
    pytest.param({"train.losses": [{"type": "l1loss"}, {"type": "ganloss", "loss_weight": 0}]},
                 ["train.losses[1].loss_weight", "ESRGANModel trains against its GAN loss", "nonzero"],
                 id="gan-weight-zero"),
    pytest.param({"train.losses": [{"type": "l1loss"}]}, ["train.gan_opt", "missing required key for ESRGANModel",
                                                          "ganloss"], id="no-gan-loss"),
    pytest.param({"datasets.train.gt_size": 12}, ["datasets.train.gt_size", "multiples of 8", "use 8"],
                 id="dunet-patch-size"),
]


@pytest.mark.parametrize("changes,expect", GAN_LIST_ERRORS)
def test_gan_loss_list_errors(error_workdir: Path, changes: dict, expect: list,  # noqa: F811
                              capsys: pytest.CaptureFixture, request) -> None:
    opt = write_options(error_workdir, "bad", **{**REDUX_GAN, "train.losses": REDUX_LOSSES[:2] + REDUX_LOSSES[4:5],
                                                 **changes})
    _check_error(error_workdir, opt, expect, capsys, request.node.callspec.id)


def _check_error(folder: Path, opt: Path, expect: list, capsys: pytest.CaptureFixture, label: str) -> None:
    before = snapshot(folder)
    capsys.readouterr()
    rc = run_main(train_main, ["-opt", str(opt), "--no-progress"])
    _out, err = capsys.readouterr()
    assert_user_error(rc, err, expect, label)
    assert len(err.strip().splitlines()) == 1, err
    assert "bad.yml:" in err, err
    assert_unchanged(before, snapshot(folder), label)


def test_the_family_runs_in_float32_under_mixed_precision() -> None:
    """Clamps at 1e-12, fractional powers and FFTs lose their meaning in half precision: under autocast the
    family's losses run in float32 and equal their float32 values."""
    from framework.registry import LOSS_REGISTRY
    from framework.schema import Component

    components = (Component("MSSIMLoss", {}), Component("FFLoss", {}), Component("HSLuvLoss", {}))
    entries = all_entries(None, None, None, components)
    losses = GeneratorLosses(entries, lambda e: e.component.build(LOSS_REGISTRY))
    output, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    plain = losses.terms(output, lambda kind: gt, lambda: output)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = losses.terms(output.bfloat16(), lambda kind: gt.bfloat16(), lambda: output)
    for name in ("mssim", "ff", "hsluv"):
        assert mixed[name].dtype == torch.float32
        torch.testing.assert_close(mixed[name], LOSS_REGISTRY.get(
            {"mssim": "MSSIMLoss", "ff": "FFLoss", "hsluv": "HSLuvLoss"}[name])()(output.bfloat16().float(),
                                                                                 gt.bfloat16().float()))
    assert set(plain) == set(mixed)
