"""Messages that lead to the fix in one round, table-driven.

Each case writes the tiny valid options with one BasicSR-style change, runs ``train.py --dry-run`` in-process
and checks: exit code 2, nothing written, the message says what to do (``expect``), and no misleading
suggestion (``forbid``: a "did you mean" that would change what the key means). Misspellings still get their
suggestion. Then: errors come sorted by line, data checks of valid sections come in the same round as key
errors, and the BasicSR keys with a meaning here are accepted.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import pytest

from framework.cli import run_main, train_main
from framework.device import usable_cores
from framework.errors import did_you_mean

from .test_option_errors import (OPT_FILE, assert_unchanged, assert_user_error, at, base_options,  # noqa: F401
                                 data_root, drop, dump, prepare_workdir, rename, snapshot)


@dataclass
class Msg:
    edit: Callable[[Dict[str, Any]], None]
    expect: Sequence[str]
    forbid: Sequence[str] = ("did you mean",)
    setup: Callable[[Path], None] = lambda work: None


def _lq_named_like_gt_x2(work: Path) -> None:
    """The LQ files of the training set renamed ``0000x2.png`` (DIV2K's naming)."""
    for path in sorted((work / "data/train/LR_x2").iterdir()):
        path.rename(path.with_name(f"{path.stem}x2{path.suffix}"))


MESSAGES: List[Any] = [
    # --- renames, with the value change where the meaning needs one
    pytest.param(Msg(at("num_gpu", 0), ["num_gpu", "'num_gpu: 0' is 'device: cpu' here"]), id="num_gpu-0"),
    pytest.param(Msg(at("num_gpu", 1), ["'num_gpu: 1' is 'device: cuda' here", "torchrun"]), id="num_gpu-1"),
    pytest.param(Msg(at("num_gpu", "auto"), ["'num_gpu: auto' is 'device: auto' here"]), id="num_gpu-auto"),
    pytest.param(Msg(at("num_gpu", "two"), ["num_gpu", "device", "expected 0, a GPU count or auto"]),
                 id="num_gpu-bad-value"),
    pytest.param(Msg(at("path.pretrain_network_g", None), ["path.pretrain_network_g", "is 'pretrain_path' here",
                                                           "rename it"]), id="pretrain_network_g"),
    pytest.param(Msg(at("path.pretrain_model_g", None), ["is 'pretrain_path' here"]), id="pretrain_model_g"),
    pytest.param(Msg(at("path.strict_load_g", True), ["is 'strict_load' here"]), id="strict_load_g"),
    pytest.param(Msg(at("datasets.train.use_flip", True), ["datasets.train.use_flip", "is 'use_hflip' here"]),
                 id="use_flip"),
    # --- keys with no use here: remove it, and why
    pytest.param(Msg(at("dist_params", {"backend": "nccl", "port": 29500}), ["dist_params", "remove it",
                                                                             "torchrun"]), id="dist_params"),
    pytest.param(Msg(at("datasets.train.use_shuffle", True), ["use_shuffle", "remove it", "always shuffled"]),
                 id="use_shuffle"),
    # --- BasicSR / Real-ESRGAN components this trainer lacks: named as such, never a look-alike
    pytest.param(Msg(at("val.metrics.niqe", {"type": "calculate_niqe", "crop_border": 2}),
                     ["val.metrics.niqe.type", "'calculate_niqe' is a BasicSR metric", "does not provide",
                      "available: calculate_lpips, calculate_psnr, calculate_ssim"],
                     forbid=["did you mean", "registered"]),
                 id="metric-niqe"),
    pytest.param(Msg(at("val.metrics.psnr.type", "calculate_psnr_pt"), ["'calculate_psnr_pt' is a BasicSR metric"]),
                 id="metric-psnr_pt"),
    pytest.param(Msg(at("model_type", "RealESRGANModel"), ["datasets.train.type", "RealESRGANModel synthesises "
                                                           "its LR inputs", "use RealESRGANDataset", "network_d",
                                                           "missing required key for RealESRGANModel"]),
                 id="model-realesrgan"),
    pytest.param(Msg(at("datasets.train.type", "RealESRGANDataset"), ["datasets.train.type", "RealESRGANDataset "
                                                                      "gives GT images only", "set model_type: "
                                                                      "RealESRNetModel or RealESRGANModel"],
                     forbid=[]),  # its dataroot_lq is then an unknown argument, with a suggestion
                 id="dataset-realesrgan"),
    pytest.param(Msg(at("network_g.type", "ECBSR"), ["'ECBSR' is a BasicSR arch",
                                                     "does not provide; available: ATD", "EDSR"]),
                 id="arch-ecbsr"),
    pytest.param(Msg(at("network_g", {"type": "craft"}), ["traiNNer-redux's arch 'craft' is 'CRAFT' here; write "
                                                          "type: CRAFT"]),
                 id="arch-craft"),
    pytest.param(Msg(at("network_g", {"type": "realplksr", "upsampler": "dysample"}),
                     ["network_g.upsampler", "'upsampler: dysample' is 'dysample: true' here"]),
                 id="realplksr-upsampler"),
    pytest.param(Msg(at("network_d", {"type": "metagan2"}), ["'metagan2' is a traiNNer-redux arch (the MetaGAN2 "
                                                             "discriminator; dunet and UNetDiscriminatorSN are "
                                                             "provided)"]),
                 id="arch-metagan2"),
    pytest.param(Msg(at("train.optim_g.type", "RMSprop"), ["'RMSprop' is a BasicSR optimizer", "Adam"]),
                 id="optimizer-rmsprop"),
    pytest.param(Msg(at("gt_usm", True), ["gt_usm", "Real-ESRGAN's top-level 'gt_usm' belongs in the degradation "
                                          "section here (degradation.gt_usm)", "convert_options.py"]),
                 id="realesrgan-key"),
    pytest.param(Msg(at("degradation", {"queue_size": 4}), ["degradation", "SRModel does not use it",
                                                            "RealESRNetModel or RealESRGANModel"]),
                 id="degradation-in-srmodel"),
    # --- misspellings keep their suggestion (and the list of what exists, punctuated)
    pytest.param(Msg(at("val.metrics.psnr.type", "calculate_pnsr"), ["did you mean 'calculate_psnr'? (known: "],
                     forbid=[]), id="typo-metric"),
    pytest.param(Msg(at("model_type", "SRModle"), ["did you mean 'SRModel'? (known: ESRGANModel, RealESRGANModel, "
                                                   "RealESRNetModel, SRGANModel, SRModel)"],
                     forbid=[]),
                 id="typo-model"),
    pytest.param(Msg(rename("train.ema_decay", "ema_decy"), ["did you mean 'ema_decay'"], forbid=["source_file"]),
                 id="typo-key"),
    pytest.param(Msg(at("nme", "x"), ["did you mean 'name'?"], forbid=["source_file", "origin"]),
                 id="typo-top-level-no-internal-keys"),
    # --- unmatched pairs: filename_tmpl named, the LQ name it looked for, the template that pairs them
    pytest.param(Msg(lambda opt: None, ["datasets.train.filename_tmpl", "with filename_tmpl '{}', GT 0000.png "
                                        "pairs with LQ 0000.<png", "filename_tmpl: '{}x2' pairs all"],
                     setup=_lq_named_like_gt_x2), id="pairs-tmpl-missing"),
    pytest.param(Msg(at("datasets.train.filename_tmpl", "{}x4"), ["datasets.train.filename_tmpl",
                                                                  "GT 0000.png pairs with LQ 0000x4.<png",
                                                                  "filename_tmpl: '{}' pairs all"]),
                 id="pairs-tmpl-wrong"),
    # --- BasicSR keys with a meaning here, given a wrong value
    pytest.param(Msg(at("val.metrics.psnr.better", "best"), ["val.metrics.psnr.better", "'higher', 'lower'"]),
                 id="better-bad"),
    pytest.param(Msg(at("datasets.train.prefetch_mode", "gpu"), ["prefetch_mode", "'cpu', 'cuda'"]),
                 id="prefetch_mode-bad"),
    pytest.param(Msg(at("val.suffix", "../x"), ["val.suffix", "not safe"]), id="suffix-unsafe"),
]

# ---- GAN keys and components in an SRModel file: each named, none ignored
GAN_KEYS: List[Any] = [
    pytest.param(Msg(at("network_d", {"type": "VGGStyleDiscriminator"}), ["network_d", "SRModel does not use it",
                                                                         "ESRGANModel"]), id="gan-network_d"),
    pytest.param(Msg(at("train.optim_d", {"type": "Adam", "lr": 1e-4}), ["train.optim_d", "does not use it"]),
                 id="gan-optim_d"),
    pytest.param(Msg(at("train.perceptual_opt", {"type": "PerceptualLoss", "criterion": "huber"}),
                     ["train.perceptual_opt.criterion", "huber", "charbonnier"]),
                 id="gan-perceptual"),
    pytest.param(Msg(at("train.gan_opt", {"type": "GANLoss"}), ["train.gan_opt", "does not use it"]), id="gan-gan_opt"),
    pytest.param(Msg(at("model_type", "ESRGANModel"), ["network_d", "missing required key for ESRGANModel",
                                                       "train.gan_opt"]), id="gan-esrgan-model"),
    pytest.param(Msg(at("train.pixel_opt.type", "GANLoss"), ["train.pixel_opt.type", "not a pixel loss",
                                                             "train.gan_opt"]), id="gan-loss-as-pixel"),
    pytest.param(Msg(at("path.pretrain_network_d", "d.pth"), ["path.pretrain_network_d", "pretrain_path_d"]),
                 id="gan-pretrain_network_d"),
]


@pytest.mark.parametrize("case", MESSAGES + GAN_KEYS)
def test_message_leads_to_the_fix(case: Msg, tmp_path: Path, data_root: Path, request,  # noqa: F811
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    work = tmp_path / "work"
    work.mkdir()
    prepare_workdir(work, data_root)
    case.setup(work)
    opt = base_options()
    case.edit(opt)
    (work / OPT_FILE).write_text(dump(opt), encoding="utf-8")
    monkeypatch.chdir(work)
    before = snapshot(work)
    capsys.readouterr()
    rc = run_main(train_main, ["-opt", OPT_FILE, "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    label = request.node.callspec.id
    assert_user_error(rc, err, case.expect, label)
    for text in case.forbid:
        assert text not in err, f"{label}: {text!r} in:\n{err}"
    assert_unchanged(before, snapshot(work), label)


@pytest.mark.parametrize("name,choices", [
    ("calculate_niqe", ["calculate_psnr", "calculate_ssim"]), ("network_d", []), ("ESRGANModel", ["SRModel"]),
    ("perceptual_opt", ["pixel_opt", "optim_g"]), ("val_frequency", ["val_freq"]), ("L3", ["L1Loss"]),
    ("gpu", ["auto", "cpu", "cuda"])])
def test_no_suggestion_that_changes_the_meaning(name: str, choices: List[str]) -> None:
    assert did_you_mean(name, choices) == ""


def test_errors_sorted_by_line_and_data_checked_in_the_same_round(tmp_path: Path, data_root: Path,  # noqa: F811
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """Key errors in three sections plus a missing validation folder (whose section's keys are right): one
    round reports all four, in the order of the file's lines."""
    work = tmp_path / "work"
    work.mkdir()
    prepare_workdir(work, data_root)
    opt = base_options()
    opt["datasets"]["val"]["dataroot_lq"] = "data/val/nowhere"
    opt["logger"]["print_frq"] = 5  # discovered before the datasets, written after them
    opt["num_gpu"] = 1
    opt["train"]["optim_g"]["lrr"] = 1e-3
    (work / OPT_FILE).write_text(dump(opt), encoding="utf-8")
    text = (work / OPT_FILE).read_text()
    monkeypatch.chdir(work)
    rc = run_main(train_main, ["-opt", OPT_FILE, "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.splitlines()
    assert len(lines) == 4, err
    numbers = [int(re.match(rf"error: {OPT_FILE}:(\d+):", line).group(1)) for line in lines]
    assert numbers == sorted(numbers), err
    for key in ("datasets.val.dataroot_lq", "logger.print_frq", "num_gpu", "train.optim_g.lrr"):
        assert any(f": {key}:" in line for line in lines), (key, err)
    line_of = {n: i + 1 for i, n in enumerate(text.splitlines())}
    assert any(line.startswith(f"error: {OPT_FILE}:{line_of['  print_frq: 5']}: logger.print_frq") for line in lines)


def test_basicsr_keys_with_a_meaning_are_accepted(tmp_path: Path, data_root: Path,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    """``better``, ``val.suffix``, ``prefetch_mode`` and ``io_backend: {type: disk}`` pass; more workers than
    cores is obeyed, with a warning."""
    work = tmp_path / "work"
    work.mkdir()
    prepare_workdir(work, data_root)
    opt = base_options()
    opt["val"]["metrics"]["psnr"]["better"] = "higher"
    opt["val"]["metrics"]["ssim"] = {"type": "calculate_ssim", "better": "higher"}
    opt["val"]["suffix"] = "mine"
    workers = usable_cores() + 1
    opt["datasets"]["train"].update(prefetch_mode="cuda", io_backend={"type": "disk"}, num_worker_per_gpu=workers)
    opt["datasets"]["val"]["prefetch_mode"] = None
    (work / OPT_FILE).write_text(dump(opt), encoding="utf-8")
    monkeypatch.chdir(work)
    rc = run_main(train_main, ["-opt", OPT_FILE, "--dry-run", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    log = out + err
    assert f"datasets.train.num_worker_per_gpu: {workers} loader workers on {workers - 1} usable" in log, log
    assert "datasets.train.prefetch_mode: cuda is accepted" in log, log


def test_test_py_names_images_with_val_suffix(tmp_path: Path, data_root: Path,  # noqa: F811
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``val.suffix`` in test.py: ``<image>_<suffix>.png``, as BasicSR names them."""
    import torch

    from framework.cli import test_main
    from framework.models.sr_model import build_network
    from framework.options import load_options

    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(data_root, work / "data")
    opt = base_options()
    del opt["train"], opt["datasets"]["train"]
    opt["datasets"] = {"test_1": opt["datasets"]["val"]}
    opt["path"] = {"pretrain_path": "net.pth"}
    opt["val"] = {"save_img": True, "suffix": "v1", "metrics": {"psnr": {"type": "calculate_psnr"}}}
    (work / OPT_FILE).write_text(dump(opt), encoding="utf-8")
    monkeypatch.chdir(work)
    torch.save({"params": build_network(load_options(OPT_FILE, require_train=False)).state_dict()}, "net.pth")
    assert run_main(test_main, ["-opt", OPT_FILE]) == 0
    saved = sorted(p.name for p in (work / "results" / opt["name"] / "visualization" / "test_1").iterdir())
    assert saved == ["0000_v1.png", "0001_v1.png"]
