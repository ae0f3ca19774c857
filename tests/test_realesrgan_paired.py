"""RealESRGANPairedDataset (Real-ESRGAN's keys): GT and LQ crops at the same place, pairs by name or from
Real-ESRGAN's paired meta_info list; RealESRGANModel / RealESRNetModel with high_order_degradation: false train
on the stored LR images as they are (Real-ESRGAN's paired recipe) and resume bit for bit; the wrong pairings of
model, dataset and switch are option errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework.cli import run_main, train_main
from framework.data.datasets import RealESRGANPairedDataset
from framework.errors import UserError

from .test_model_contract import assert_same_final_state
from .test_realesrgan import real_options
from .tinyrun import load, train_in_process

PAIRED = {"type": "RealESRGANPairedDataset", "dataroot_gt": "x4/train/HR", "dataroot_lq": "x4/train/LR_x4",
          "gt_size": 32, "use_hflip": True, "use_rot": True, "batch_size_per_gpu": 2, "num_worker_per_gpu": 0}


def _nearest_down(gt: torch.Tensor, scale: int) -> torch.Tensor:
    return gt[..., ::scale, ::scale]


def test_pairs_by_name_and_by_meta_info_give_matching_crops(tmp_path: Path, helpers) -> None:
    """GT = nearest upsampling of random LQ: every crop pair must be exactly GT's samples of the LQ crop (the
    same place, flips and rotations applied to both)."""
    written = helpers.make_paired_folders(tmp_path, ["a", "b", "c"], scale=2, lq_size=(12, 10), lq_tmpl="{}_lr")
    by_name = RealESRGANPairedDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=2, seed=5, train=True,
                                      gt_size=8, filename_tmpl="{}_lr")
    (tmp_path / "pairs.txt").write_text("c.png, c_lr.png\na.png,a_lr.png\n\n")
    listed = RealESRGANPairedDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=2, seed=5, train=True,
                                     gt_size=8, meta_info=str(tmp_path / "pairs.txt"))
    assert listed.names() == ["c.png", "a.png"]  # the list's pairs, in its order; b is not used
    listed.verify_files()
    for dataset in (by_name, listed):
        for key in [(0, 0), (0, 1), (3, 1), (7, 2)]:
            sample = dataset[key]
            gt, lq = sample["gt"], sample["lq"]
            assert gt.shape == (3, 8, 8) and lq.shape == (3, 4, 4)
            assert torch.equal(_nearest_down(gt, 2), lq), key
            assert torch.equal(dataset[key]["gt"], gt)  # the same key draws the same crop
            assert sample["name"] in written
    crops = {tuple(by_name[(epoch, 0)]["gt"].flatten()[:6].tolist()) for epoch in range(6)}
    assert len(crops) > 1  # crops and augmentation vary with the epoch


def test_a_malformed_pair_list_names_the_file_and_line(tmp_path: Path, helpers) -> None:
    helpers.make_paired_folders(tmp_path, ["a"], scale=2)
    (tmp_path / "pairs.txt").write_text("a.png, a.png\na.png\n")
    with pytest.raises(UserError, match=r"meta_info.*pairs.txt, line 2: expected 'gt_name, lq_name'"):
        RealESRGANPairedDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=2, meta_info=str(tmp_path /
                                                                                                   "pairs.txt"))


@pytest.mark.parametrize("model_type", ["RealESRGANModel", "RealESRNetModel"])
def test_a_real_esrgan_model_trains_on_stored_pairs_and_resumes_bitwise(workdir: Path, model_type: str,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """No synthesis and no pool: the dry run's input is the stored LR crop (8x8 for gt_size 32 at x4), not a
    degraded crop of a larger GT; two iterations, a stop and a resume equal an uninterrupted run."""
    gan = {} if model_type == "RealESRGANModel" else {"network_d": ..., "train.optim_d": ..., "train.gan_opt": ...}
    common = {"model_type": model_type, "datasets.train": PAIRED, "train.total_iter": 4, "train.ema_decay": 0.9,
              "degradation": {"high_order_degradation": False, "l1_gt_usm": True, "gan_gt_usm": False},
              "logger.save_checkpoint_freq": 2, "val.val_freq": 2, **gan}
    full, part = real_options(workdir, "full", **common), real_options(workdir, "part", **common)
    capsys.readouterr()
    assert run_main(train_main, ["-opt", str(full), "--dry-run", "--no-progress"]) == 0
    assert "one batch (2, 3, 8, 8) -> (2, 3, 32, 32) (gt (2, 3, 32, 32))" in capsys.readouterr().out
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=2"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    groups = ("networks", "ema", "optimizers", "schedulers")
    assert_same_final_state(workdir / "weights", "full", "part", 4, groups)
    state = load(workdir / "weights" / "full_iter_4.pt")
    assert "pair_pool" not in state["model"]
    assert set(state["model"]["networks"]) == ({"net_g", "net_d"} if model_type == "RealESRGANModel" else {"net_g"})


def test_the_sharpened_gt_is_what_the_pixel_loss_compares_with(workdir: Path) -> None:
    """l1_gt_usm: the batch gets gt_pix = USM(gt); the stored LR is untouched."""
    from framework.checks import check_and_build
    from framework.models.realesrgan_model import sharpened_targets
    from framework.options import load_options

    opt = real_options(workdir, "usm", **{"datasets.train": PAIRED, "degradation": {
        "high_order_degradation": False, "l1_gt_usm": True, "percep_gt_usm": False, "gan_gt_usm": False}})
    built = check_and_build(load_options(str(opt)))
    model = built.model
    sample = built.datasets["train"][(0, 0)]
    batch = {"lq": sample["lq"][None], "gt": sample["gt"][None]}
    inputs = model._inputs(batch, 1)
    assert model.synthesis is None and inputs["lq"] is batch["lq"]
    assert set(inputs) == {"lq", "gt", "gt_pix"}
    assert torch.equal(inputs["gt_pix"], sharpened_targets(batch["gt"], {"gt_pix": True})["gt_pix"])
    assert not torch.equal(inputs["gt_pix"], batch["gt"])


@pytest.mark.parametrize("changes,expect", [
    ({"datasets.train": PAIRED}, ["datasets.train.type", "RealESRGANModel synthesises its LR inputs",
                                  "high_order_degradation: false to train on RealESRGANPairedDataset's LR images"]),
    ({"datasets.train": {**PAIRED, "meta_info": "missing.txt"}, "degradation": {"high_order_degradation": False}},
     ["datasets.train.meta_info", "missing.txt", "does not exist"]),
])
def test_paired_option_errors(workdir: Path, changes: dict, expect: list, capsys: pytest.CaptureFixture) -> None:
    opt = real_options(workdir, "bad", **changes)
    capsys.readouterr()
    assert run_main(train_main, ["-opt", str(opt), "--no-progress"]) == 2
    err = capsys.readouterr().err
    for text in expect:
        assert text in err, err
    assert not (workdir / "weights").exists()
