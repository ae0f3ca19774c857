"""traiNNer-redux's published templates (tests/fixtures/traiNNer-redux/) move over in one command.

``scripts/convert_options.py`` on the templates for Compact, ESRGAN and DAT_2 (paired and on-the-fly
degradations), SPAN and RealCUGAN, and on the RealCUGAN template with traiNNer-redux's other network names, then
``train.py --dry-run`` on the result, pass on the first run. The data sit at the
templates' own relative paths (``datasets/train/dataset1/hr``, ``hr2``, ``lr``, ``lr2`` ...), tiny and generated,
so the files need no change at all. The converter must leave nothing to fix by hand.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
import yaml

from framework import cli
from framework.cli import run_main
from framework.data.degradations import bicubic_downsample
from framework.data.image_io import write_image
from framework.tools import convert_options

from .test_basicsr_files import _image
from .test_option_errors import assert_unchanged, snapshot

FIXTURES = Path(__file__).parent / "fixtures" / "traiNNer-redux"
TEMPLATES = ["Compact_fromscratch.yml", "Compact_OTF_fromscratch.yml", "ESRGAN_fromscratch.yml",
             "ESRGAN_OTF_finetune.yml", "SPAN_fromscratch.yml", "DAT_2_fromscratch.yml", "DAT_2_OTF_finetune.yml",
             "RealCUGAN_fromscratch.yml"]
# The dry runs take one batch of 2 crops of 32x32 LR (the templates' 8 of 64x64 cost minutes on a CPU for DAT);
# the files' own sizes pass the option checks of the converter unchanged.
SMALL_BATCH = ["--set", "datasets.train.batch_size_per_gpu=2", "--set", "datasets.train.gt_size=128",
               "--set", "datasets.train.num_worker_per_gpu=0"]

LEFT = re.compile(r"^  \S+?:\d+: (\S+?): ")


@pytest.fixture(scope="module")
def redux_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 384x384 training images (x4 LR 96x96: the templates' largest LR crop; 16 in all, the largest batch
    of the templates) per training folder, one 64x64 validation pair per validation folder, at the templates'
    paths."""
    root = tmp_path_factory.mktemp("redux_tree")
    for n, (phase, size, count) in enumerate((("train", 384, 8), ("val", 64, 1))):
        for k, suffix in enumerate(("", "2")):
            for i in range(count):
                gt = _image(100 * n + 10 * k + i, size)
                write_image(gt, str(root / f"datasets/{phase}/dataset1/hr{suffix}/{i:04d}.png"))
                lq = bicubic_downsample(gt.float().div(255), 4)
                write_image((lq.clamp(0, 1) * 255).round().to(torch.uint8),
                            str(root / f"datasets/{phase}/dataset1/lr{suffix}/{i:04d}.png"))
    return root


def _convert(src: Path, dst: Path, capsys: pytest.CaptureFixture) -> Tuple[int, str]:
    capsys.readouterr()
    rc = run_main(convert_options.main, [str(src), "-o", str(dst)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and rc in (0, 3), f"exit code {rc}\n{out}{err}"
    return rc, out


def _left_to_fix(out: str) -> List[str]:
    """The lines of the converter's "could not map" list."""
    return [line for line in out.splitlines() if LEFT.match(line)]


def _write_pretrained(options_path: Path) -> None:
    """The ``pretrain_network_g`` file a fine-tuning template names, of its own network."""
    from framework.models.sr_model import build_network
    from framework.options import load_options

    options = load_options(str(options_path))
    weights = Path(options.path.pretrain_path or "")
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": build_network(options).state_dict()}, weights)


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_converts_then_dry_run_passes(template: str, work: Path, capsys: pytest.CaptureFixture,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = FIXTURES / template
    text = src.read_text(encoding="utf-8")
    if "type: perceptualloss" in text:  # VGG's ImageNet weights are never downloaded: a random stand-in file
        from .test_gan import random_vgg_file

        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        random_vgg_file(tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    dst = work / template
    _rc, out = _convert(src, dst, capsys)
    assert src.read_text(encoding="utf-8") == text, "the input was modified"
    left = _left_to_fix(out)
    assert not left, f"{template}: left to fix by hand after the converter:\n" + "\n".join(left)
    _dry_run(work, dst, capsys)


@pytest.fixture
def work(redux_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the data tree, the working directory of the test."""
    work = tmp_path / "work"
    shutil.copytree(redux_tree, work)
    monkeypatch.chdir(work)
    return work


def _dry_run(work: Path, options_path: Path, capsys: pytest.CaptureFixture) -> str:
    """``train.py --dry-run`` on a converted template (with its pretrained file when it fine-tunes): exit code
    0, nothing written; returns what it printed."""
    if "finetune" in options_path.name:
        _write_pretrained(options_path)
    before = snapshot(work)
    rc = run_main(cli.train_main, ["-opt", str(options_path), "--dry-run", "--no-progress", *SMALL_BATCH])
    out, err = capsys.readouterr()
    assert rc == 0, f"{options_path.name}: exit code {rc}\n{err}"
    assert "nothing was written" in out, out
    assert_unchanged(before, snapshot(work), f"{options_path.name} --dry-run")
    return out


EXPECTED: Dict[str, List[str]] = {
    "Compact_fromscratch.yml": [
        "use_amp: moved to train.mixed_precision: fp16", "amp_bf16: removed", "num_gpu: renamed to device: auto",
        "use_channels_last: moved to train.channels_last: true", "lq_size: renamed to gt_size: 384",
        "accum_iter: moved to train.accumulate_steps: 1", "resume_state: renamed to resume_path",
        "grad_clip: removed", "metrics_enabled: removed", "val.metrics.dists: commented out"],
    "Compact_OTF_fromscratch.yml": [
        "model_type: added, RealESRNetModel", "high_order_degradation: moved into the degradation section",
        "lq_usm: moved into the degradation section", "resize_mode_prob3: moved into the degradation section",
        "blur_prob2: moved to degradation.second_blur_prob: 0.0", "high_order_degradations_debug: removed",
        "lq_size: renamed to gt_size: 256", "dist_params: removed"],
    "ESRGAN_OTF_finetune.yml": [
        "model_type: added, RealESRGANModel", "type: renamed to type: RealESRGANDataset",
        "type: renamed to type: PairedImageDataset", "pretrain_network_g: renamed to pretrain_path",
        "param_key_g: removed", "strict_load_g: renamed to strict_load", "use_moa: removed", "moa_augs: removed"],
}


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_each_change_is_one_line_and_the_written_file_reads_as_meant(template: str, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    _rc, out = _convert(FIXTURES / template, tmp_path / template, capsys)
    for change in EXPECTED[template]:
        assert change in out, f"{change!r} not in:\n{out}"
    written = yaml.safe_load((tmp_path / template).read_text(encoding="utf-8"))
    assert written["train"]["mixed_precision"] == "fp16" and "use_amp" not in written
    assert written["datasets"]["train"]["gt_size"] == 4 * yaml.safe_load(
        (FIXTURES / template).read_text())["datasets"]["train"]["lq_size"]
    if template == "Compact_OTF_fromscratch.yml":  # BasicSR's W&B keys mean the same here: kept as written
        assert written["logger"]["wandb"] == {"project": None, "resume_id": None} and "logger.wandb" not in out
    if "OTF" in template:
        degradation = written["degradation"]
        assert degradation["resize_mode_list"] == ["bilinear", "bicubic", "nearest-exact", "lanczos"]
        assert degradation["second_blur_prob"] == 0.0 and degradation["blur_prob"] == 0.0
    # the user's comments stay: every comment of a line that was kept is in the written file
    text = (tmp_path / template).read_text(encoding="utf-8")
    assert "# Randomly rotate the images." in text and "# Total number of iterations." in text


@pytest.mark.parametrize("template", ["Compact_OTF_fromscratch.yml", "ESRGAN_fromscratch.yml"])
def test_unconverted_template_gets_the_same_answers(template: str, redux_tree: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    """The option checks name each foreign key with its fix, as the converter applies it."""
    monkeypatch.chdir(redux_tree)
    capsys.readouterr()
    rc = run_main(cli.train_main, ["-opt", str(FIXTURES / template), "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    expected = ["traiNNer-redux's 'use_amp: true' is 'train.mixed_precision: fp16' here",
                "'lq_size: 64' is 'gt_size: 256' here (gt_size = lq_size x scale", "'grad_clip: false' is what "
                "this trainer does anyway"]
    expected += (["model_type: missing: traiNNer-redux chooses the training", "top-level 'lq_usm' belongs in the "
                  "degradation section"] if "OTF" in template else
                 ["dataset 'pairedimagedataset' is 'PairedImageDataset' here"])
    for text in expected:
        assert text in err, f"{text!r} not in:\n{err}"


# Stand-ins for the pieces other parts of the work provide (small, so the dry runs are quick on a CPU): this
# trainer's own networks and losses in their place, so everything else of each template is checked today.
STAND_INS = {
    "network_g": {"compact": {"type": "SRVGGNetCompact", "num_feat": 16, "num_conv": 4, "upscale": 4},
                  "esrgan": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_block": 1,
                             "num_grow_ch": 8, "scale": 4}},
    "network_d": {"type": "UNetDiscriminatorSN", "num_feat": 8},
}


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_with_stand_ins_for_networks_and_losses_dry_runs(template: str, work: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    dst = work / template
    _convert(FIXTURES / template, dst, capsys)
    options = yaml.safe_load(dst.read_text(encoding="utf-8"))
    kind = str(options["network_g"]["type"]).lower()
    options["network_g"] = STAND_INS["network_g"]["esrgan" if kind == "esrgan" else "compact"]
    train = options["train"]
    train.pop("losses")
    train["pixel_opt"] = {"type": "L1Loss", "loss_weight": 1.0}
    if "network_d" in options:
        options["network_d"] = STAND_INS["network_d"]
        train["gan_opt"] = {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}
    dst.write_text(yaml.safe_dump(options, sort_keys=False), encoding="utf-8")
    out = _dry_run(work, dst, capsys)
    assert "train set: 16 images" in out and "one batch (2, 3, 32, 32)" in out, out
    assert "validation set" not in out  # val.val_enabled: false


NEOSR = """name: train_compact
model_type: image
scale: 4
use_amp: true
bfloat16: true  # neosr: bf16 autocast

datasets:
  train:
    type: paired
    dataroot_gt: datasets/train/dataset1/hr
    dataroot_lq: datasets/train/dataset1/lr
    patch_size: 32
    batch_size: 8
    accumulate: 2
    augmentation: ["none", "mixup"]
    aug_prob: [0.5, 0.5]

network_g:
  type: SRVGGNetCompact
  upscale: 4

train:
  ema: 0.999
  optim_g:
    type: AdamW
    lr: !!float 5e-4
  pixel_opt:
    type: L1Loss

logger:
  total_iter: 1000
  save_checkpoint_freq: 500
"""


def test_neosr_yaml_keys_convert(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "neosr.yml"
    src.write_text(NEOSR, encoding="utf-8")
    _rc, out = _convert(src, tmp_path / "ours.yml", capsys)
    written = yaml.safe_load((tmp_path / "ours.yml").read_text(encoding="utf-8"))
    assert written["model_type"] == "SRModel" and written["datasets"]["train"]["type"] == "PairedImageDataset"
    assert written["datasets"]["train"]["gt_size"] == 128 and written["datasets"]["train"]["batch_size_per_gpu"] == 8
    assert written["train"]["mixed_precision"] == "bf16" and written["train"]["ema_decay"] == 0.999
    assert written["train"]["accumulate_steps"] == 2 and written["train"]["total_iter"] == 1000
    assert "logger" in written and "total_iter" not in written["logger"]
    assert "'augmentation: [none, mixup]' asks for something this trainer does not provide" in out, out


# traiNNer-redux's names of the spandrel networks its other templates train, each in the RealCUGAN template's
# place (the templates differ only in network_g and the scale comment).
NETWORK_NAMES = ["mosr", "mosr_t", "seemore_t", "moesr2"]


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_redux_network_name_in_a_template_converts_then_dry_runs(name: str, work: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    text = (FIXTURES / "RealCUGAN_fromscratch.yml").read_text(encoding="utf-8")
    src = work / f"{name}.yml"
    src.write_text(text.replace("  type: realcugan\n  pro: true\n  fast: false\n", f"  type: {name}\n"),
                   encoding="utf-8")
    dst = work / f"{name}_converted.yml"
    _rc, out = _convert(src, dst, capsys)
    assert not _left_to_fix(out)
    assert f"preset {name} = " in _dry_run(work, dst, capsys)


@pytest.mark.parametrize("scale, network, expected", [
    (4, "  type: realcugan\n  fast: true\n", "network_g.fast: Real-CUGAN's fast variant upscales x2 only"),
    (2, "  type: realcugan\n  pro: true\n  fast: true\n", "network_g.pro: Real-CUGAN's fast variant has no pro"),
    (8, "  type: realcugan\n", "network_g.type: Real-CUGAN upscales x2, x3 or x4, but scale is 8"),
    (4, "  type: RealCUGAN\n  pro: true\n  fast: 1\n", "network_g.fast: expected true or false"),
])
def test_a_real_cugan_that_does_not_exist_is_an_option_error(scale: int, network: str, expected: str, work: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    """traiNNer-redux's realcugan picks the network by scale; the ones that do not exist are named at load."""
    from framework.models.sr_model import build_network
    from framework.options import load_options

    text = (FIXTURES / "RealCUGAN_fromscratch.yml").read_text(encoding="utf-8")
    text = text.replace("  type: realcugan\n  pro: true\n  fast: false\n", network)
    src = work / "cugan.yml"
    src.write_text(text.replace("scale: 4  #", f"scale: {scale}  #"), encoding="utf-8")
    dst = work / "cugan_converted.yml"
    _convert(src, dst, capsys)
    before = snapshot(work)
    rc = run_main(cli.train_main, ["-opt", str(dst), "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and "Traceback" not in err, err
    assert_unchanged(before, snapshot(work), "a refused Real-CUGAN")
    if "fast: 1" in network:  # a mistyped switch is its problem alone
        assert len(err.splitlines()) == 1, err
        return
    fast, pro = "fast: true" in network, "pro: true" in network
    fixed = dst.read_text(encoding="utf-8").replace(f"scale: {scale}", "scale: 2")
    dst.write_text(fixed.replace("pro: true", "") if fast else fixed, encoding="utf-8")
    net = build_network(load_options(str(dst)))  # at x2 each exists: the class by fast, pro's layout passed on
    assert type(net).__name__ == ("UpCunet2x_fast" if fast else "UpCunet2x")
    assert getattr(net, "pro", None) is not None if pro and not fast else getattr(net, "pro", None) is None
