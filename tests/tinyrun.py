"""Tiny training runs for the checkpoint tests: generated data, a small MSRResNet, options written to disk."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

from framework.data.example_data import generate_example_data

REPO = Path(__file__).resolve().parents[1]
TRAIN_PY = str(REPO / "train.py")

BASE: Dict[str, Any] = {
    "name": "tiny",
    "scale": 2,
    "manual_seed": 3,
    "device": "cpu",
    "datasets": {
        "train": {"type": "PairedImageDataset", "dataroot_gt": "data/train/HR", "dataroot_lq": "data/train/LR_x2",
                  "gt_size": 16, "batch_size_per_gpu": 2, "num_worker_per_gpu": 0, "dataset_enlarge_ratio": 1},
        "val": {"type": "PairedImageDataset", "dataroot_gt": "data/val/HR", "dataroot_lq": "data/val/LR_x2"},
    },
    "network_g": {"type": "MSRResNet", "num_feat": 8, "num_block": 1, "upscale": 2},
    "train": {"total_iter": 8, "warmup_iter": 2, "ema_decay": 0.0,
              "optim_g": {"type": "Adam", "lr": 1e-3},
              "scheduler": {"type": "MultiStepLR", "milestones": [5], "gamma": 0.5},
              "pixel_opt": {"type": "L1Loss"}},
    "val": {"val_freq": 4, "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}},
    "logger": {"print_freq": 2, "save_checkpoint_freq": 4, "use_tb_logger": False},
}


def tiny_options(data_root: Union[str, os.PathLike] = "data", name: str = "tiny") -> Dict[str, Any]:
    """The one tiny configuration the tests start from (a fresh deep copy), with data under ``data_root`` laid
    out as ``generate_example_data`` writes it (train/HR, train/LR_x2, val/HR, val/LR_x2)."""
    opt = copy.deepcopy(BASE)
    opt["name"] = name
    root = Path(data_root)
    for phase in ("train", "val"):
        opt["datasets"][phase]["dataroot_gt"] = str(root / phase / "HR")
        opt["datasets"][phase]["dataroot_lq"] = str(root / phase / "LR_x2")
    return opt


def load(path: Union[str, os.PathLike]) -> Any:
    """A file the trainer wrote, read as users read it (weights-only)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def make_data(root: Path) -> None:
    generate_example_data(root / "data", num_train=5, num_val=2, size=32, scale=2)


def write_options(folder: Path, name: str = "tiny", **changes: Any) -> Path:
    """``changes`` use dotted keys: ``write_options(p, **{'train.total_iter': 5})``; the value ``...`` deletes."""
    opt = tiny_options(name=name)
    for dotted, value in changes.items():
        node = opt
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(opt))
    return path


def run_train(cwd: Path, args: List[str], timeout: float = 120,
              env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """train.py in a real subprocess (for signals and exit codes)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, TRAIN_PY, *args, "--no-progress"], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def train_in_process(options_path: Path, overrides: List[str] = (), flags: List[str] = ()) -> int:
    """train.py's main in this process (fast; no interpreter start-up); ``flags``: more arguments
    (``--verbose``)."""
    from framework.cli import run_main, train_main

    args = ["-opt", str(options_path), "--no-progress", *flags]
    for item in overrides:
        args += ["--set", item]
    return run_main(train_main, args)


def stop_with_sigterm(workdir: Path, options_path: Path, after: str) -> Dict[str, Any]:
    """train.py on ``options_path`` in a child process, sent SIGTERM once its log shows ``after`` (``"iter 5]"``);
    checks it saved one checkpoint and stopped cleanly, and returns that checkpoint."""
    import signal

    from .childproc import Child

    name = yaml.safe_load(options_path.read_text())["name"]
    with Child.train(workdir, "-opt", str(options_path)) as child:
        child.wait_for(after, timeout=120)  # the log lines on stdout
        child.proc.send_signal(signal.SIGTERM)
        rc, out, err = child.finish(timeout=60)
    assert rc == 0, err
    assert "SIGTERM: stopped after iteration" in out
    saved = list((workdir / "weights").glob(f"{name}_iter_*.pt"))
    assert len(saved) == 1
    return load(saved[0])
