"""docs/walk-through.md in miniature: HR images -> options/train/photos_x4.yml -> training -> upscaled images
and an ONNX model, with the commands it gives (smaller network, a few iterations)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework import cli
from framework.cli import run_main
from framework.data.example_data import generate_example_data
from framework.data.image_io import decode_file
from framework.tools.checkpoint_tool import main as checkpoint_main
from framework.tools.inference import main as inference_main

from .tinyrun import REPO, train_in_process

OPTIONS = REPO / "options" / "train" / "photos_x4.yml"


def test_from_hr_images_to_upscaled_photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    data = generate_example_data(tmp_path / "datasets" / "photos", num_train=3, num_val=2, size=48, scale=4)
    small = ["device=cpu", "num_threads=1", "network_g.num_feat=8", "network_g.num_conv=2",
             "datasets.train.gt_size=32", "datasets.train.batch_size_per_gpu=2",
             f"datasets.train.dataroot_gt={data['train_hr']}", f"datasets.val.dataroot_gt={data['val_hr']}",
             "train.total_iter=4", "train.warmup_iter=0", "train.scheduler.milestones=[2,3]", "val.val_freq=2",
             "logger.save_checkpoint_freq=2", "logger.use_tb_logger=false"]
    threads = torch.get_num_threads()
    try:
        assert train_in_process(OPTIONS, small) == 0
    finally:
        torch.set_num_threads(threads)
    best = "weights/photos_SRVGGNetCompact_x4_best"
    assert Path(f"{best}.pt").is_file() and Path(f"{best}.pth").is_file()
    # measure the best weights with test.py and the same options file
    assert cli.run_main(cli.test_main, ["-opt", str(OPTIONS), "--set", f"path.pretrain_path={best}.pth",
                                *(f"--set={item}" for item in small)]) == 0
    assert "photos_val (bicubic)" in capsys.readouterr().out
    # upscale a folder with the .pt (it knows its network) ...
    assert run_main(inference_main, ["-i", str(data["val_hr"]), "-o", "results/val_x4", "-w", f"{best}.pt",
                                     "--tile", "16", "--no-progress"]) == 0
    assert "the EMA weights of the full checkpoint" in capsys.readouterr().out
    for src in Path(data["val_hr"]).glob("*.png"):
        h, w = decode_file(str(src)).shape[1:]
        assert decode_file(f"results/val_x4/{src.name}").shape == (3, 4 * h, 4 * w)
    # ... and share it: the .pth as it is (spandrel), an ONNX model from the .pt
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    assert run_main(checkpoint_main, ["export", f"{best}.pt", "--onnx"]) == 0
    assert "onnxruntime equals PyTorch" in capsys.readouterr().out
    assert Path(f"{best}_ema.onnx").is_file()
