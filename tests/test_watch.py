"""Watching a run: tiled validation, comparison strips in TensorBoard, the per-image tables (train.py and
test.py), and Weights & Biases in offline mode.

Tiny runs on the 32 px example images (2 validation images, scale 2); each check reads what a user reads: the
CSV files, TensorBoard's event files through TensorBoard's own reader, W&B's offline transaction log.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from framework import cli
from framework.data.datasets import PairedImageDataset
from framework.errors import UserError
from framework.options import load_options
from framework.registry import METRIC_REGISTRY  # noqa: F401  (metrics registered)
from framework.schema import Component
from framework.validation import evaluate, tiled

from .tinyrun import BASE, train_in_process, write_options

PSNR = {"psnr": Component("calculate_psnr", {"crop_border": 0})}


def _table(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------ tiled validation


class ThreeConvs(nn.Module):
    """Three 3x3 convolutions then a x2 pixel shuffle: a receptive field of 3 LR pixels each side."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(x) * 4)  # large weights' worth of contrast: seams show in 8 bits


def _val_loader(root: Path) -> torch.utils.data.DataLoader:
    dataset = PairedImageDataset(str(root / "data/val/HR"), str(root / "data/val/LR_x2"), scale=2)
    return torch.utils.data.DataLoader(dataset, batch_size=1)


@torch.no_grad()
def test_tiled_validation_equals_whole_image_validation_with_a_pad_of_the_receptive_field(workdir: Path) -> None:
    """16x16 LR images in tiles of 4: with a pad of 3 (the receptive field) every kept pixel sees what it sees in
    the whole image. The outputs then agree to float rounding (oneDNN may sum a smaller input in another order,
    ~1e-7), and the 8-bit outputs, so the metrics, are identical here; a pad of 1 shows seams."""
    net, loader = ThreeConvs().eval(), _val_loader(workdir)
    lq = next(iter(loader))["lq"]
    whole_out = net(lq)
    for pad, same in ((3, True), (8, True), (1, False)):
        out = tiled(net, scale=2, multiple=1, tile=4, pad=pad)(lq)
        assert out.shape == whole_out.shape
        assert ((out - whole_out).abs().max().item() < 1e-6) is same, pad
    whole = evaluate(tiled(net, scale=2, multiple=1, tile=0, pad=0), loader, PSNR)
    enough = evaluate(tiled(net, scale=2, multiple=1, tile=4, pad=3), loader, PSNR)
    short = evaluate(tiled(net, scale=2, multiple=1, tile=4, pad=1), loader, PSNR)
    assert enough.by_name() == whole.by_name()
    assert short.averages["psnr"] != whole.averages["psnr"]


def test_training_and_test_py_validate_through_the_tiles(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """The tiny MSRResNet (receptive field 5 LR pixels) validated in tiles of 4: with tile_pad 8 the per-image
    table equals whole-image validation's, with tile_pad 0 it does not; test.py tiles the same way."""
    common = {"train.total_iter": 2, "val.val_freq": 2, "val.show_images": 0, "logger.save_checkpoint_freq": 2}
    tables = {}
    for name, tile, pad in (("whole", 0, 0), ("tiles", 4, 8), ("seams", 4, 0)):
        opt = write_options(workdir, name, **common, **{"val.tile_size": tile, "val.tile_pad": pad})
        assert train_in_process(opt) == 0
        tables[name] = [(row["image"], row["psnr"]) for row in _table(workdir / "experiments" / name /
                                                                       "per_image_val.csv")]
    assert len(tables["whole"]) == 2 and tables["tiles"] == tables["whole"]
    assert tables["seams"] != tables["whole"]
    for pad, same in ((8, True), (0, False)):
        (workdir / f"test_{pad}.yml").write_text(yaml.safe_dump(_test_options(f"test_{pad}", "whole",
                                                                               {"tile_size": 4, "tile_pad": pad})))
        assert cli.run_main(cli.test_main, ["-opt", f"test_{pad}.yml"]) == 0
        rows = _table(workdir / "results" / f"test_{pad}" / "per_image_val.csv")
        assert ([(row["image"], row["psnr"]) for row in rows] == tables["whole"]) is same
    capsys.readouterr()


def _test_options(name: str, weights: str, val: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": name, "scale": 2, "device": "cpu",
            "datasets": {"test_1": {"name": "val", "type": "PairedImageDataset",
                                    "dataroot_gt": "data/val/HR", "dataroot_lq": "data/val/LR_x2"}},
            "network_g": copy.deepcopy(BASE["network_g"]), "path": {"pretrain_path": f"weights/{weights}_iter_2.pth"},
            "val": {"metrics": copy.deepcopy(BASE["val"]["metrics"]), **val}}


# ------------------------------------------------------------------------------------------ comparison strips


def test_tensorboard_gets_one_strip_per_shown_image_at_each_validation(workdir: Path) -> None:
    """bicubic | output | GT of the 16 px centre crop: 48 x 16 at iterations 2 and 4, for the first 2 images;
    its GT third is the GT file's centre crop, pixel for pixel."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    opt = write_options(workdir, **{"train.total_iter": 4, "val.val_freq": 2, "logger.use_tb_logger": True,
                                    "val.show_images": 2, "val.show_crop": 16})
    assert train_in_process(opt) == 0
    events = EventAccumulator(str(workdir / "experiments" / "tiny" / "tb_logger"), size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == ["val/val/0000", "val/val/0001"]
    for tag in events.Tags()["images"]:
        shown = events.Images(tag)
        assert [(e.step, e.width, e.height) for e in shown] == [(2, 3 * 16, 16), (4, 3 * 16, 16)]
        strip = torch.from_numpy(_png(shown[-1].encoded_image_string))
        gt = torch.from_numpy(_png((workdir / "data/val/HR" / f"{tag[-4:]}.png").read_bytes()))
        assert torch.equal(strip[:, 32:], gt[8:24, 8:24])  # 32x32 GT, centre crop rows/cols 8..23
        assert not torch.equal(strip[:, :16], strip[:, 16:32])  # bicubic and output differ


def _png(data: bytes) -> Any:
    import numpy as np

    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def test_named_images_and_none(workdir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for name, show, tags in (("named", ["0001"], ["val/val/0001"]), ("none", 0, [])):
        opt = write_options(workdir, name, **{"train.total_iter": 2, "val.val_freq": 2, "val.show_images": show,
                                              "logger.use_tb_logger": True})
        assert train_in_process(opt) == 0
        events = EventAccumulator(str(workdir / "experiments" / name / "tb_logger"))
        events.Reload()
        assert sorted(events.Tags()["images"]) == tags


# ------------------------------------------------------------------------------------------ per-image tables


def test_per_image_rows_after_a_run_and_no_duplicates_after_resuming_from_an_earlier_checkpoint(
        workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 6, "val.val_freq": 2, "logger.save_checkpoint_freq": 2})
    assert train_in_process(opt) == 0
    path = workdir / "experiments" / "tiny" / "per_image_val.csv"
    first = _table(path)
    assert list(first[0]) == ["iteration", "dataset", "image", "psnr", "bicubic_psnr"]
    assert [(r["iteration"], r["image"]) for r in first] == [(str(i), n) for i in (2, 4, 6) for n in ("0000", "0001")]
    assert len({r["bicubic_psnr"] for r in first}) == 2  # one bicubic value per image, the same at every iteration
    best = json.loads((workdir / "experiments" / "tiny" / "best_model" / "best_records.json").read_text())
    for entry in best["history"]:  # the rows average to the logged metric
        rows = [float(r["psnr"]) for r in first if r["iteration"] == str(entry["iteration"])]
        assert sum(rows) / len(rows) == pytest.approx(entry["metrics"]["psnr"], abs=1e-12)
    # resume from iteration 2 and go to 8: the first run's rows of 4 and 6 are replaced, not duplicated
    assert train_in_process(opt, ["path.resume_path=weights/tiny_iter_2.pt", "train.total_iter=8"]) == 0
    second = _table(path)
    keys = [(r["iteration"], r["image"]) for r in second]
    assert keys == [(str(i), n) for i in (2, 4, 6, 8) for n in ("0000", "0001")]
    assert second[:6] == first  # bitwise resume: the same values again


def test_a_metric_added_on_resume_widens_the_table(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 2, "val.val_freq": 2})
    assert train_in_process(opt) == 0
    metrics = {**BASE["val"]["metrics"], "ssim": {"type": "calculate_ssim", "crop_border": 2}}
    assert train_in_process(opt, ["path.resume_path=weights/tiny_iter_2.pt", "train.total_iter=4",
                                  f"val.metrics={json.dumps(metrics)}"]) == 0
    rows = _table(workdir / "experiments" / "tiny" / "per_image_val.csv")
    assert [(r["iteration"], bool(r["ssim"]), bool(r["bicubic_ssim"])) for r in rows] == \
           [("2", False, False), ("2", False, False), ("4", True, True), ("4", True, True)]


# ------------------------------------------------------------------------------------------ Weights & Biases


def _offline_history(run: Path, run_id: str) -> List[Dict[str, Any]]:
    from framework.wandb_logger import history_rows, read_records

    records = read_records(str(run / f"run-{run_id}.wandb"))
    (meta,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert meta.run_id == run_id and meta.project == "watch-test"
    return history_rows(records)


def _logged(rows: List[Dict[str, Any]]) -> List[Tuple[int, str]]:
    """(iteration, key) of every logged value, in order; shown strips checked for their size on the way."""
    steps = []
    for row in rows:
        steps += [(row["iteration"], key) for key in row if key != "iteration" and not key.startswith("_")]
        if "val/val/0000" in row:
            assert (row["val/val/0000"]["width"], row["val/val/0000"]["height"]) == (48, 16)
    return steps


@pytest.mark.parametrize("resume_from", [4, 2])
def test_wandb_offline_run_and_its_resume_write_one_offline_run_folder(workdir: Path, resume_from: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B offline writes one folder per process start, and ``wandb sync`` keeps only the last one uploaded of
    a run id. The resumed start carries the earlier rows up to its iteration into its own folder (the earlier
    folder moves into ``carried/``): one folder to sync, with every iteration's scalars and strips once, the
    abandoned continuation's (resume from 2 after 4) left out."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(workdir / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (workdir / "wandb_dir").mkdir()
    opt = write_options(workdir, **{"train.total_iter": 4, "val.val_freq": 2, "val.show_images": 1,
                                    "logger.save_checkpoint_freq": 2, "val.show_crop": 16,
                                    "logger.wandb": {"project": "watch-test"}})
    assert train_in_process(opt) == 0
    run_id = (workdir / "experiments" / "tiny" / "wandb_run_id").read_text().strip()
    (first,) = (workdir / "wandb_dir" / "wandb").glob("offline-run-*")
    first_steps = _logged(_offline_history(first, run_id))
    assert train_in_process(opt, [f"path.resume_path=weights/tiny_iter_{resume_from}.pt",
                                  "train.total_iter=6"]) == 0
    (run,) = (workdir / "wandb_dir" / "wandb").glob("offline-run-*")
    assert f"-{run_id}" in run.name and run != first
    carried = workdir / "wandb_dir" / "wandb" / "carried" / first.name / f"run-{run_id}.wandb"
    assert carried.is_file()
    sync = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", str(workdir / "wandb_dir" / "wandb")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "WANDB_SILENT": "false"})
    assert "Would sync 1 run(s)" in sync.stdout + sync.stderr, sync.stdout + sync.stderr
    assert (workdir / "experiments" / "tiny" / "wandb_run_id").read_text().strip() == run_id
    steps = _logged(_offline_history(run, run_id))
    assert len(steps) == len(set(steps)), "a value logged twice"
    assert sorted(s for s in steps if s[0] <= resume_from) == sorted(s for s in first_steps if s[0] <= resume_from)
    for it in (2, 4, 6):
        assert {(it, "losses/l_pix"), (it, "lr"), (it, "metrics/val/psnr"), (it, "val/val/0000")} <= set(steps)
    images = list(run.glob("files/media/images/**/*.png"))
    assert len(images) == 3 and all(Image.open(p).size == (48, 16) for p in images)


def test_an_offline_log_cut_short_reads_up_to_its_last_whole_record(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed run leaves a .wandb log cut mid-record: the carried rows are those written whole."""
    wandb = pytest.importorskip("wandb")
    from framework.wandb_logger import earlier_offline_folder, history_rows, read_records

    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="p", id="cut1", mode="offline", dir=str(tmp_path), settings=wandb.Settings(console="off"))
    for i in range(50):
        run.log({"iteration": i, "x": float(i)})
    run.finish()
    wandb.teardown()
    (log,) = tmp_path.glob("wandb/offline-run-*/run-cut1.wandb")
    whole = read_records(str(log))
    for size in (len(log.read_bytes()) // 2, 7, 0):
        cut = tmp_path / f"cut{size}.wandb"
        cut.write_bytes(log.read_bytes()[:size])
        part = read_records(str(cut))
        assert [r.SerializeToString() for r in part] == [r.SerializeToString() for r in whole[:len(part)]]
        assert len(part) < len(whole)
    assert [row["x"] for row in history_rows(whole)] == [float(i) for i in range(50)]
    # the newest earlier folder of the id, W&B's -<n> suffix (a second start within the second) included
    for name in ("offline-run-20260101_000000-cut1", "offline-run-20260101_000001-cut1",
                 "offline-run-20260101_000001-cut1-1", "offline-run-20260101_000002-other"):
        (tmp_path / "w" / name).mkdir(parents=True)
        (tmp_path / "w" / name / f"run-{name.split('-')[3]}.wandb").write_bytes(b"")
    own = tmp_path / "w" / "offline-run-20260101_000003-cut1"
    assert earlier_offline_folder(str(own), "cut1") == str(tmp_path / "w" / "offline-run-20260101_000001-cut1-1")
    assert earlier_offline_folder(str(own), "nothing") is None


def test_wandb_without_the_package_is_an_option_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    opt = write_options(workdir, **{"logger.wandb": {"project": "p", "resume_id": None}})
    with pytest.raises(UserError, match=r"tiny.yml:\d+: logger.wandb.project: .*pip install wandb"):
        load_options(str(opt))
    # BasicSR's files carry `wandb: {project: ~, resume_id: ~}`: W&B off, no package needed
    load_options(str(write_options(workdir, "off", **{"logger.wandb": {"project": None, "resume_id": None}})))


def test_a_shown_image_name_that_is_no_validation_image_is_an_option_error(workdir: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    opt = write_options(workdir, **{"val.show_images": ["0001", "001"]})
    assert cli.run_main(cli.train_main, ["-opt", str(opt), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "val.show_images[1]: no validation image is named '001'" in err[0], err
    assert "tiny.yml:" in err[0] and "did you mean '0001'" in err[0]
    assert not (workdir / "experiments").exists() and not (workdir / "weights").exists()


def test_wandb_that_cannot_start_is_one_clear_line(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    """Online mode and not logged in: exit 2, one line naming logger.wandb and the ways out, no traceback."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(workdir))  # no ~/.netrc login
    monkeypatch.setenv("WANDB_DIR", str(workdir))
    opt = write_options(workdir, **{"logger.wandb": {"project": "p"}})
    assert cli.run_main(cli.train_main, ["-opt", str(opt), "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "logger.wandb: W&B did not start" in lines[0] and "wandb login" in lines[0], err
    assert "Traceback" not in err
    assert not list(workdir.glob("weights/*.pt")) and not list(workdir.glob("experiments/tiny/train_*.log"))
