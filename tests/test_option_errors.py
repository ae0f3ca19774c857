"""Bad option files and command lines, table-driven.

For every case: exit code 2, no traceback, every stderr line is ``error: ...``, the message names the key path
(or the file) and the problem, and nothing under ``weights/`` or ``experiments/`` (nor anywhere else in the
working directory) was created or modified.

Each case runs train.py's ``main`` in-process (through :func:`framework.cli.run_main`, as the script does) in a
fresh working directory holding a copy of a tiny generated data set, a valid base option file with the case's
mutation, and ``weights/`` and ``experiments/`` with a sentinel file each. A few cases also go through a real
``python train.py`` subprocess, and every option file shipped under ``options/`` must pass ``--dry-run``.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import torch
import yaml

from framework import cli
from framework.cli import run_main, train_main
from framework.data.example_data import generate_example_data

from .tinyrun import BASE, REPO, TRAIN_PY, train_in_process

OPT_FILE = "opt.yml"
Snapshot = Dict[str, Tuple[bool, int, int]]


# ------------------------------------------------------------------------------------------------ helpers




def base_options() -> Dict[str, Any]:
    """tests/tinyrun.py's BASE (paths relative to the working directory), as a fresh deep copy."""
    opt = copy.deepcopy(BASE)
    opt["name"] = "tiny_err"
    return opt


def dump(opt: Dict[str, Any]) -> str:
    return yaml.safe_dump(opt, sort_keys=False)


def snapshot(root: Path) -> Snapshot:
    """Every file and folder below ``root``: (is_dir, size, mtime_ns)."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            is_dir = os.path.isdir(full)
            out[os.path.relpath(full, root)] = (is_dir, 0 if is_dir else st.st_size, st.st_mtime_ns)
    return out


def prepare_workdir(folder: Path, data_root: Path) -> None:
    """A working directory: a copy of the tiny data set and output folders holding a sentinel each."""
    shutil.copytree(data_root, folder / "data")
    for out in ("weights", "experiments"):
        (folder / out).mkdir()
        (folder / out / "sentinel.txt").write_text(f"{out} sentinel\n")


def assert_user_error(rc: int, err: str, expect: Sequence[Any], label: str) -> None:
    """Exit code 2, no traceback, only ``error: `` lines, and each of ``expect`` (a string, or a tuple of
    alternatives) in the message."""
    assert rc == 2, f"{label}: exit code {rc}, expected 2; stderr:\n{err}"
    assert "Traceback" not in err, f"{label}: traceback on stderr:\n{err}"
    lines = err.splitlines()
    assert lines, f"{label}: nothing on stderr"
    bad = [line for line in lines if not line.startswith("error: ")]
    assert not bad, f"{label}: stderr lines without 'error: ': {bad}\nstderr:\n{err}"
    alternatives = [(s,) if isinstance(s, str) else tuple(s) for s in expect]
    missing = [alt for alt in alternatives if not any(a.lower() in err.lower() for a in alt)]
    assert not missing, f"{label}: {missing} not in stderr:\n{err}"


def assert_unchanged(before: Snapshot, after: Snapshot, label: str) -> None:
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    outputs = [p for p in created + removed + changed if p.split(os.sep)[0] in ("weights", "experiments")]
    assert not outputs, f"{label}: under weights/ or experiments/: created {created}, removed {removed}, " \
                        f"modified {changed}"
    assert not (created or removed or changed), f"{label}: created {created}, removed {removed}, " \
                                                f"modified {changed}"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/{train,val}/{HR,LR_x2} (4 + 2 images, 32x32 HR) and train/LR_x4 (8x8, for a wrong-scale LQ folder)."""
    root = tmp_path_factory.mktemp("option_errors_data")
    generate_example_data(root / "x2", num_train=4, num_val=2, size=32, scale=2)
    generate_example_data(root / "x4", num_train=4, num_val=2, size=32, scale=4)
    shutil.copytree(root / "x4" / "train" / "LR_x4", root / "x2" / "train" / "LR_x4")
    return root / "x2"


@pytest.fixture(scope="module")
def weights_only_pth(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A real ``.pth`` (weights only) written by a two-iteration training run."""
    work = tmp_path_factory.mktemp("option_errors_pth")
    shutil.copytree(data_root, work / "data")
    opt = base_options()
    opt["name"] = "pth_source"
    opt["train"]["total_iter"] = 2
    opt["train"]["warmup_iter"] = 0
    opt["train"]["scheduler"] = None
    opt["val"]["val_freq"] = 2
    opt["logger"].update(print_freq=1, save_checkpoint_freq=2)
    (work / OPT_FILE).write_text(dump(opt))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        rc = train_in_process(Path(OPT_FILE))
    assert rc == 0
    pth = work / "weights" / "pth_source_iter_2.pth"
    assert pth.is_file() and (work / "weights" / "pth_source_iter_2.pt").is_file()
    return pth


# ------------------------------------------------------------------------------------------------ the cases


@dataclass
class Case:
    """``edit(opt)`` changes the valid base options (a dict) in place; ``text(yaml_text)`` returns the file
    text instead (syntax errors, duplicates); ``setup(workdir)`` changes the data or adds files; ``args`` are
    extra command-line arguments; ``expect`` are substrings stderr must contain (case-insensitive; a tuple
    means any one of them): the key path or file, and a word of the problem; ``line``: the message must say
    ``opt.yml:<line>``, where
    ``line(text)`` computes the line from the file text."""

    expect: Sequence[Any]
    edit: Optional[Callable[[Dict[str, Any]], None]] = None
    text: Optional[Callable[[str], str]] = None
    setup: Optional[Callable[[Path], None]] = None
    args: Sequence[str] = ()
    opt_arg: Optional[str] = None
    line: Optional[Callable[[str], int]] = None
    needs_pth: bool = False


def at(dotted: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    """Set ``a.b.c`` to ``value`` (creating mappings on the way)."""

    def edit(opt: Dict[str, Any]) -> None:
        node = opt
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    return edit


def drop(dotted: str) -> Callable[[Dict[str, Any]], None]:
    def edit(opt: Dict[str, Any]) -> None:
        node = opt
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node[part]
        del node[parts[-1]]

    return edit


def rename(dotted: str, new: str) -> Callable[[Dict[str, Any]], None]:
    """Rename the last key of ``dotted`` to ``new`` (a typo), keeping its value."""

    def edit(opt: Dict[str, Any]) -> None:
        node = opt
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[new] = node.pop(parts[-1])

    return edit


def both(*edits: Callable[[Dict[str, Any]], None]) -> Callable[[Dict[str, Any]], None]:
    def edit(opt: Dict[str, Any]) -> None:
        for e in edits:
            e(opt)

    return edit


def line_of(pattern: str) -> Callable[[str], int]:
    """The 1-based line of the first line matching ``pattern`` (regex) in the file text."""

    def find(text: str) -> int:
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(pattern, line):
                return n
        raise AssertionError(f"{pattern!r} not in the option text")

    return find


def replace_line(pattern: str, new: str) -> Callable[[str], str]:
    """Replace the first line matching ``pattern`` by ``new`` (its indentation kept)."""

    def edit(text: str) -> str:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if re.search(pattern, line):
                indent = line[:len(line) - len(line.lstrip())]
                lines[i] = indent + new
                return "\n".join(lines) + "\n"
        raise AssertionError(f"{pattern!r} not in the option text")

    return edit


def append_text(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def write_file(rel: str, content: bytes) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return setup


def remove_file(rel: str) -> Callable[[Path], None]:
    return lambda work: (work / rel).unlink()


def make_dir(rel: str) -> Callable[[Path], None]:
    return lambda work: (work / rel).mkdir(parents=True)


def bug(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=f"framework bug: {reason}")


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: device: cuda is valid here")

CASES: List[Any] = [
    # --- typos, at each nesting level
    pytest.param(Case(["manual_sed", "unknown key", "manual_seed"], edit=rename("manual_seed", "manual_sed"),
                      line=line_of(r"^manual_sed:")), id="typo-top-level"),
    pytest.param(Case(["train.total_iters", "unknown key", "total_iter"],
                      edit=rename("train.total_iter", "total_iters"),
                      line=line_of(r"^  total_iters:")), id="typo-train"),
    pytest.param(Case(["train.optim_g.lrr", "no argument", "'lr'"], edit=rename("train.optim_g.lr", "lrr"),
                      line=line_of(r"^    lrr:")), id="typo-optim_g-kwarg"),
    pytest.param(Case(["train.scheduler.milestone", "no argument", "milestones"],
                      edit=rename("train.scheduler.milestones", "milestone")), id="typo-scheduler-kwarg"),
    pytest.param(Case(["train.pixel_opt.loss_weigth", "no argument", "loss_weight"],
                      edit=at("train.pixel_opt.loss_weigth", 1.0)), id="typo-loss-kwarg"),
    pytest.param(Case(["network_g.num_feats", "no argument", "num_feat"],
                      edit=rename("network_g.num_feat", "num_feats")),
                 id="typo-network-kwarg"),
    pytest.param(Case(["datasets.train.batch_size_pergpu", "no argument", "batch_size_per_gpu"],
                      edit=rename("datasets.train.batch_size_per_gpu", "batch_size_pergpu")), id="typo-dataset-key"),
    pytest.param(Case(["datasets.train.batch_size", "neosr's 'batch_size' is 'batch_size_per_gpu' here"],
                      edit=rename("datasets.train.batch_size_per_gpu", "batch_size")), id="neosr-dataset-key"),
    pytest.param(Case(["datasets.val.dataroot_hq", "dataroot_lq"],
                      edit=rename("datasets.val.dataroot_lq", "dataroot_hq"),
                      line=line_of(r"^    dataroot_hq:")), id="typo-val-dataset-key"),
    pytest.param(Case(["val.metrics.psnr.crop_bordr", "no argument", "crop_border"],
                      edit=rename("val.metrics.psnr.crop_border", "crop_bordr"), line=line_of(r"^      crop_bordr:")),
                 id="typo-metric-kwarg"),
    pytest.param(Case(["val.val_frequency", "unknown key", "val_freq"], edit=rename("val.val_freq", "val_frequency")),
                 id="typo-val"),
    pytest.param(Case(["logger.print_frq", "unknown key", "print_freq"], edit=rename("logger.print_freq", "print_frq")),
                 id="typo-logger"),
    pytest.param(Case(["path.pretrian_path", "unknown key", "pretrain_path"], edit=at("path.pretrian_path", "x.pth")),
                 id="typo-path"),
    # --- BasicSR key names get a hint naming ours
    pytest.param(Case(["path.pretrain_network_g", "pretrain_path"], edit=at("path.pretrain_network_g", "x.pth"),
                      line=line_of(r"^  pretrain_network_g:")),
                 id="basicsr-pretrain_network_g"),
    pytest.param(Case(["path.resume_state", "resume_path"], edit=at("path.resume_state", "x.state")),
                 id="basicsr-resume_state"),
    pytest.param(Case(["num_gpu", "device"], edit=at("num_gpu", 1)), id="basicsr-num_gpu"),
    # --- wrong types
    pytest.param(Case(["scale", "whole number", "'two'"], edit=at("scale", "two")), id="type-scale-string"),
    pytest.param(Case(["train.total_iter", "whole number", "2.5"], edit=at("train.total_iter", 2.5)),
                 id="type-int-non-whole"),
    pytest.param(Case(["train.warmup_iter", "whole number"], text=replace_line(r"^  warmup_iter:", "warmup_iter: 1e-3"),
                      line=line_of(r"^  warmup_iter:")), id="type-int-yaml-1e-3"),
    pytest.param(Case(["train.optim_g.lr", "number", "'fast'"], edit=at("train.optim_g.lr", "fast")),
                 id="type-lr-string"),
    pytest.param(Case(["logger.use_tb_logger", "true or false"], edit=at("logger.use_tb_logger", "maybe")),
                 id="type-bool"),
    pytest.param(Case(["datasets.train.use_hflip", "true or false"], edit=at("datasets.train.use_hflip", 3)),
                 id="type-dataset-arg"),
    pytest.param(Case(["train.scheduler.milestones", "list"], edit=at("train.scheduler.milestones", 5)),
                 id="type-list"),
    pytest.param(Case(["train.optim_g.betas", "2 items"], edit=at("train.optim_g.betas", [0.9])),
                 id="type-tuple-length"),
    pytest.param(Case(["datasets", "mapping"], edit=at("datasets", ["train", "val"])), id="type-datasets-list"),
    pytest.param(Case(["network_g", "mapping with a 'type'"], edit=at("network_g", "MSRResNet")),
                 id="type-component-string"),
    pytest.param(Case(["train", "mapping"], edit=at("train", 8)), id="type-section-scalar"),
    pytest.param(Case(["val.metrics", "mapping"], edit=at("val.metrics", ["psnr"])), id="type-metrics-list"),
    pytest.param(Case(["datasets.train.num_worker_per_gpu", "whole number", "auto"],
                      edit=at("datasets.train.num_worker_per_gpu", "many")), id="type-int-or-auto"),
    pytest.param(Case(["device", "'cpu'", "gpu"], edit=at("device", "gpu")), id="type-device-choice"),
    # --- out of range
    pytest.param(Case(["scale", "at most 8"], edit=at("scale", 16), line=line_of(r"^scale:")), id="range-scale"),
    pytest.param(Case(["train.ema_decay", "less than 1"], edit=at("train.ema_decay", 1.5)), id="range-ema_decay"),
    pytest.param(Case(["logger.print_freq", "at least 1"], edit=at("logger.print_freq", 0)), id="range-print_freq"),
    pytest.param(Case(["datasets.train.batch_size_per_gpu", "at least 1"],
                      edit=at("datasets.train.batch_size_per_gpu", 0)),
                 id="range-batch-size"),
    pytest.param(Case(["manual_seed", "at least 0"], edit=at("manual_seed", -1)), id="range-seed"),
    pytest.param(Case(["train.optim_g.lr", "-0.001"], edit=at("train.optim_g.lr", -1e-3)), id="range-negative-lr"),
    pytest.param(Case(["train.optim_g.betas", "1.5"], edit=at("train.optim_g.betas", [1.5, 0.999])),
                 id="range-betas"),
    pytest.param(Case(["train.optim_g", "nesterov", "momentum"],
                      edit=at("train.optim_g", {"type": "SGD", "lr": 0.1, "nesterov": True})),
                 id="kwargs-sgd-nesterov"),
    pytest.param(Case(["train.ema_decay", "nan"], edit=at("train.ema_decay", float("nan")), args=["--dry-run"]),
                 id="range-ema-nan"),
    pytest.param(Case(["train.grad_clip_norm", "nan"], edit=at("train.grad_clip_norm", float("nan")),
                      args=["--dry-run"]), id="range-grad-clip-nan"),
    pytest.param(Case(["datasets.train.gt_size", "0"], edit=at("datasets.train.gt_size", 0), args=["--dry-run"]),
                 id="range-gt_size-zero"),
    # --- unknown registered types
    pytest.param(Case(["network_g.type", "not registered", "MSRResNet"], edit=at("network_g.type", "MSRResNett")),
                 id="unknown-arch"),
    pytest.param(Case(["train.pixel_opt.type", "not registered", "L1Loss"], edit=at("train.pixel_opt.type", "L3Loss")),
                 id="unknown-loss"),
    pytest.param(Case(["train.optim_g.type", "not registered", "Adam"], edit=at("train.optim_g.type", "Adamm"),
                      line=line_of(r"type: Adamm$")),
                 id="unknown-optimizer"),
    pytest.param(Case(["train.scheduler.type", "not registered", "CosineAnnealingRestartLR"],
                      edit=at("train.scheduler.type", "CosineLR")), id="unknown-scheduler"),
    pytest.param(Case(["val.metrics.psnr.type", "not registered", "did you mean 'calculate_psnr'"],
                      edit=at("val.metrics.psnr.type", "calculate_pnsr")), id="unknown-metric"),
    pytest.param(Case(["datasets.train.type", "not registered", "PairedImageDataset"],
                      edit=at("datasets.train.type", "ImageDataset")), id="unknown-dataset"),
    pytest.param(Case(["model_type", "not registered", "SRModel"], edit=at("model_type", "SRModle")),
                 id="unknown-model"),
    # --- bad arguments of registered types
    pytest.param(Case(["train.scheduler.milestones", "missing required argument"],
                      edit=at("train.scheduler", {"type": "MultiStepLR", "gamma": 0.5})), id="kwargs-missing"),
    pytest.param(Case(["network_g.num_in_ch", "missing required argument"],
                      edit=at("network_g", {"type": "EDSR", "num_out_ch": 3, "num_feat": 8, "num_block": 1,
                                            "upscale": 2})), id="kwargs-missing-arch"),
    pytest.param(Case(["train.optim_g.params", "set by the framework"], edit=at("train.optim_g.params", [1])),
                 id="kwargs-injected"),
    pytest.param(Case(["network_g", "upscale", "scale"], edit=at("network_g.upscale", 4)),
                 id="kwargs-upscale-vs-scale"),
    pytest.param(Case(["train.scheduler", "periods", "restart_weights", "same length"],
                      edit=at("train.scheduler", {"type": "CosineAnnealingRestartLR", "periods": [4, 4],
                                                  "restart_weights": [1]})), id="kwargs-cosine-lengths"),
    pytest.param(Case(["network_g", "num_feat", ">= 1"], edit=at("network_g.num_feat", 0)),
                 id="kwargs-arch-num_feat-0"),
    pytest.param(Case(["network_g", "act_type", "foo"],
                      edit=at("network_g", {"type": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2, "upscale": 2,
                                            "act_type": "foo"})), id="kwargs-arch-act_type"),
    pytest.param(Case(["val.metrics.psnr.crop_border", "40"], edit=at("val.metrics.psnr.crop_border", 40)),
                 id="kwargs-crop_border-larger-than-images"),
    # --- missing required keys
    pytest.param(Case(["name", "missing required key"], edit=drop("name")), id="missing-name"),
    pytest.param(Case(["network_g", "missing required key"], edit=drop("network_g")), id="missing-network"),
    pytest.param(Case(["train", "missing required section"], edit=drop("train")), id="missing-train"),
    pytest.param(Case(["train.optim_g", "missing required key"], edit=drop("train.optim_g")), id="missing-optim_g"),
    pytest.param(Case(["train.total_iter", "missing required key"], edit=drop("train.total_iter")),
                 id="missing-total_iter"),
    pytest.param(Case(["datasets.train", "missing"], edit=drop("datasets.train")), id="missing-train-set"),
    pytest.param(Case(["datasets.train.type", "missing required key"], edit=drop("datasets.train.type")),
                 id="missing-dataset-type"),
    pytest.param(Case(["datasets.train.dataroot_lq", "missing required argument"],
                      edit=drop("datasets.train.dataroot_lq")), id="missing-dataroot_lq"),
    pytest.param(Case(["datasets.train.gt_size", "required"], edit=drop("datasets.train.gt_size")),
                 id="missing-gt_size"),
    # --- names, keys and devices
    pytest.param(Case(["name", "safe file name", "../x"], edit=at("name", "../x")), id="unsafe-name"),
    pytest.param(Case(["name", ("empty", "safe file name")], edit=at("name", ""), args=["--dry-run"]),
                 id="empty-name"),
    pytest.param(Case(["path.experiments_root", "opt.yml", "folder"], edit=at("path.experiments_root", OPT_FILE)),
                 id="experiments_root-is-a-file"),
    pytest.param(Case(["path.weights_root", "opt.yml", "folder"], edit=at("path.weights_root", OPT_FILE)),
                 id="weights_root-is-a-file"),
    pytest.param(Case(["datasets.valid", "'val'"], edit=rename("datasets.val", "valid")), id="dataset-key-valid"),
    pytest.param(Case(["datasets.train.io_backend", "'memcached'", "{type: disk}, {type: lmdb}"],
                      edit=at("datasets.train.io_backend", {"type": "memcached"})), id="io-backend-memcached"),
    pytest.param(Case(["datasets.train.dataroot_gt", "not an LMDB folder", "create_lmdb.py"],
                      edit=at("datasets.train.io_backend", {"type": "lmdb"})), id="io-backend-lmdb-on-a-folder"),
    pytest.param(Case(["datasets.train.meta_info_file", "does not exist"],
                      edit=at("datasets.train.meta_info_file", "nowhere.txt")), id="meta-info-file-missing"),
    pytest.param(Case(["device", "cuda", "no cuda device"], edit=at("device", "cuda")), id="device-cuda-no-gpu",
                 marks=NO_CUDA),
    # --- data folders and files
    pytest.param(Case(["datasets.train.dataroot_gt", "does not exist", "data/train/GT"],
                      edit=at("datasets.train.dataroot_gt", "data/train/GT"),
                      line=line_of(r"dataroot_gt: data/train/GT$")),
                 id="data-missing-gt-folder"),
    pytest.param(Case(["datasets.val.dataroot_lq", "does not exist", "data/val/LR_x3"],
                      edit=at("datasets.val.dataroot_lq", "data/val/LR_x3")), id="data-missing-lq-folder"),
    pytest.param(Case(["datasets.train.dataroot_gt", "no PNG/JPEG images", "data/empty"], setup=make_dir("data/empty"),
                      edit=at("datasets.train.dataroot_gt", "data/empty")), id="data-empty-folder"),
    pytest.param(Case(["datasets.train.dataroot_lq", "unmatched", "0002.png"],
                      setup=remove_file("data/train/LR_x2/0002.png")),
                 id="data-unmatched-pairs"),
    pytest.param(Case(["datasets.val", "data/val/HR/0001.png", "cannot read image"],
                      setup=write_file("data/val/HR/0001.png", b"these are notes, not an image\n")),
                 id="data-text-as-png"),
    pytest.param(Case(["datasets.train.gt_size", "smaller than", "gt_size"], edit=at("datasets.train.gt_size", 64)),
                 id="data-gt_size-too-large"),
    pytest.param(Case(["datasets.train.gt_size", "multiple of scale"], edit=at("datasets.train.gt_size", 15)),
                 id="data-gt_size-not-multiple"),
    pytest.param(Case(["datasets.train", "data/train/HR/0000.png", "not x2"],
                      edit=at("datasets.train.dataroot_lq", "data/train/LR_x4")), id="data-lq-wrong-scale"),
    pytest.param(Case(["datasets.train.filename_tmpl", "{"], edit=at("datasets.train.filename_tmpl", "{")),
                 id="data-bad-filename_tmpl"),
    pytest.param(Case(["datasets.train.batch_size_per_gpu", "larger than", "4 samples"],
                      edit=at("datasets.train.batch_size_per_gpu", 8)), id="data-batch-larger-than-set"),
    # --- checkpoints
    pytest.param(Case(["path.resume_path", "does not exist", "weights/nothing.pt"],
                      edit=at("path.resume_path", "weights/nothing.pt")), id="resume-missing"),
    pytest.param(Case(["path.pretrain_path", "does not exist", "none.pth"], edit=at("path.pretrain_path", "none.pth")),
                 id="pretrain-missing"),
    pytest.param(Case(["path.resume_path", "model.pth", "weights only", "pretrain_path"],
                      edit=at("path.resume_path", "model.pth"), needs_pth=True), id="resume-is-pth"),
    pytest.param(Case(["path.resume_path", "notes.pt", ("not a readable", "refused")],
                      setup=write_file("notes.pt", b"not torch\n"),
                      edit=at("path.resume_path", "notes.pt")), id="resume-not-torch"),
    # --- YAML text
    pytest.param(Case(["opt.yml", "invalid YAML", "mapping values"],
                      text=replace_line(r"^  total_iter:", "total_iter: 8: 9"), line=line_of(r"^  total_iter:")),
                 id="yaml-syntax"),
    pytest.param(Case(["opt.yml", "invalid YAML"], text=replace_line(r"^\s+gamma:", "\tgamma: 0.5"),
                      line=line_of(r"^\s*\tgamma:")), id="yaml-tab"),
    pytest.param(Case(["manual_seed", "duplicate key", "first at line"], text=append_text("manual_seed: 5\n"),
                      line=lambda text: len(text.splitlines())), id="yaml-duplicate-key"),
    pytest.param(Case(["opt.yml", "top level", "list"], text=lambda _text: "- name\n- scale\n"),
                 id="yaml-top-level-list"),
    pytest.param(Case(["opt.yml", "cannot read"], text=lambda _text: "name: caf\udce9\n"), id="yaml-not-utf8"),
    # --- the command line
    pytest.param(Case(["--set train.total_iter", "key.path=value"], args=["--set", "train.total_iter"]),
                 id="set-no-equals"),
    pytest.param(Case(["--set train.total_iter=[1,", "not valid YAML"], args=["--set", "train.total_iter=[1,"]),
                 id="set-bad-yaml"),
    pytest.param(Case(["--set name.first=1", "name", "not a mapping"], args=["--set", "name.first=1"]),
                 id="set-under-scalar"),
    pytest.param(Case(["--set train..lr=1", "empty part"], args=["--set", "train..lr=1"]), id="set-empty-part"),
    pytest.param(Case(["--set train.total_itr=5", "train.total_itr", "unknown key", "total_iter"],
                      args=["--set", "train.total_itr=5"]), id="set-typo"),
    pytest.param(Case(["--set train.total_iter=abc", "train.total_iter", "whole number"],
                      args=["--set", "train.total_iter=abc"]), id="set-wrong-type"),
    pytest.param(Case(["missing.yml", "not found"], opt_arg="missing.yml"), id="opt-file-missing"),
    pytest.param(Case(["data", "folder"], opt_arg="data"), id="opt-file-is-folder"),
    # --- schedules that react to a validation metric
    pytest.param(Case(["train.scheduler.monitor", "ssim", "not one of val.metrics", "psnr"],
                      edit=at("train.scheduler", {"type": "ReduceLROnPlateau", "monitor": "ssim"}),
                      line=line_of(r"^\s+monitor:")), id="plateau-unknown-metric"),
    pytest.param(Case(["train.scheduler.type", "ReduceLROnPlateau", "val.metrics"],
                      edit=lambda o: (at("train.scheduler", {"type": "ReduceLROnPlateau"})(o), o.pop("val"),
                                      o["datasets"].pop("val"))), id="plateau-without-validation"),
    pytest.param(Case(["train.scheduler.mode", "from the metric"],
                      edit=at("train.scheduler", {"type": "ReduceLROnPlateau", "mode": "max"})), id="plateau-mode"),
]


def _write_case(work: Path, case: Case, pth: Optional[Path]) -> Tuple[str, str]:
    """Write the case's option file into ``work``; returns (option file argument, file text)."""
    opt = base_options()
    if case.edit is not None:
        case.edit(opt)
    text = dump(opt)
    if case.text is not None:
        text = case.text(text)
    if "\udce9" in text:  # a Latin-1 byte in a file that should be UTF-8
        (work / OPT_FILE).write_bytes(text.encode("utf-8", "surrogateescape"))
    else:
        (work / OPT_FILE).write_text(text, encoding="utf-8")
    if case.setup is not None:
        case.setup(work)
    if case.needs_pth:
        shutil.copy2(pth, work / "model.pth")
    return (case.opt_arg or OPT_FILE), text


@pytest.mark.parametrize("case", CASES)
def test_bad_options_exit_2_and_write_nothing(case: Case, tmp_path: Path, data_root: Path, request,
                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    pth = request.getfixturevalue("weights_only_pth") if case.needs_pth else None
    work = tmp_path / "work"
    work.mkdir()
    prepare_workdir(work, data_root)
    opt_arg, text = _write_case(work, case, pth)
    monkeypatch.chdir(work)
    before = snapshot(work)
    capsys.readouterr()
    rc = run_main(train_main, ["-opt", opt_arg, *case.args, "--no-progress"])
    out, err = capsys.readouterr()
    label = request.node.callspec.id
    assert_user_error(rc, err, case.expect, label)
    if case.line is not None:
        assert f"{OPT_FILE}:{case.line(text)}:" in err, f"{label}: expected {OPT_FILE}:{case.line(text)}: in\n{err}"
    assert_unchanged(before, snapshot(work), label)


# ------------------------------------------------------------------------------------------------ positive control


def test_yaml_5e3_and_1e_4_are_numbers_dry_run_passes(tmp_path: Path, data_root: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    """YAML 1.1 reads ``5e3`` and ``1e-4`` as strings; the options read them as numbers (5e3 is whole)."""
    work = tmp_path / "work"
    work.mkdir()
    prepare_workdir(work, data_root)
    text = dump(base_options())
    text = replace_line(r"^  total_iter:", "total_iter: 5e3")(text)
    text = replace_line(r"^    lr:", "lr: 1e-4")(text)
    assert yaml.safe_load(text)["train"]["total_iter"] == "5e3"  # the point of the case: YAML gives a string
    (work / OPT_FILE).write_text(text)
    monkeypatch.chdir(work)
    before = snapshot(work)
    rc = run_main(train_main, ["-opt", OPT_FILE, "--dry-run", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "nothing was written" in out
    assert "Traceback" not in err
    assert_unchanged(before, snapshot(work), "5e3 dry run")


# ------------------------------------------------------------------------------------------------ real subprocesses


def test_subprocess_exit_2_without_traceback(tmp_path: Path, data_root: Path) -> None:
    """End to end through ``python train.py`` (two processes at once): a YAML syntax error, and a missing data
    folder with a ``--set``."""
    work = tmp_path / "work"
    work.mkdir()
    prepare_workdir(work, data_root)
    text = replace_line(r"^  total_iter:", "total_iter: 8: 9")(dump(base_options()))
    (work / "syntax.yml").write_text(text)
    opt = base_options()
    opt["datasets"]["train"]["dataroot_gt"] = "data/train/nothing"
    (work / "nodata.yml").write_text(dump(opt))
    before = snapshot(work)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = {
        "syntax": ["-opt", "syntax.yml"],
        "nodata": ["-opt", "nodata.yml", "--set", "train.total_iter=4"],
    }
    procs = {key: subprocess.Popen([sys.executable, TRAIN_PY, *args, "--no-progress"], cwd=work, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for key, args in runs.items()}
    results = {}
    for key, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        results[key] = (proc.returncode, out, err)

    rc, out, err = results["syntax"]
    line = line_of(r"^  total_iter:")(text)
    assert_user_error(rc, err, [f"syntax.yml:{line}:", "invalid YAML", "mapping values"], "subprocess syntax")
    rc, out, err = results["nodata"]
    assert_user_error(rc, err, ["datasets.train.dataroot_gt", "data/train/nothing", "does not exist"],
                      "subprocess nodata")
    assert out == ""
    assert_unchanged(before, snapshot(work), "subprocess")


def test_argparse_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture) -> None:
    """No -opt, or an unknown flag: argparse's usage message and exit code 2, no traceback."""
    monkeypatch.chdir(tmp_path)
    for argv, word in (([], "-opt"), (["-opt", "x.yml", "--auto_resume"], "--auto_resume")):
        with pytest.raises(SystemExit) as info:
            run_main(train_main, argv)
        err = capsys.readouterr().err
        assert info.value.code == 2
        assert "Traceback" not in err and word in err and "error:" in err
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_flags() -> None:
    result = subprocess.run([sys.executable, TRAIN_PY, "--help"], capture_output=True, text=True, timeout=60,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    for flag in ("-opt", "--set", "--auto-resume", "--debug", "--dry-run"):
        assert re.search(rf"(^|[\s\[,]){re.escape(flag)}\b", result.stdout), f"{flag} not in --help:\n{result.stdout}"


# ------------------------------------------------------------------------------------------------ shipped files


SHIPPED = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "options").rglob("*.yml"))


@pytest.fixture(scope="module")
def example_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """datasets/example as scripts/make_example_data.py writes it with its defaults, datasets/example_x4 as it
    writes it with --scale 4 (the Real-ESRGAN examples), and the HR images as datasets/photos/{train,val}/HR,
    the walk-through's layout (docs/walk-through.md, options/train/photos_x4.yml)."""
    root = tmp_path_factory.mktemp("shipped_options") / "datasets"
    generate_example_data(root / "example")
    generate_example_data(root / "example_x4", scale=4, degraded_val=True)
    for split in ("train", "val"):
        (root / "photos" / split).mkdir(parents=True)
        (root / "photos" / split / "HR").symlink_to(root / "example" / split / "HR", target_is_directory=True)
    return root


def _fake_pretrained_weights(rel: str, require_train: bool) -> None:
    """An option file names trained weights (``path.pretrain_path``: a test file's model, the GAN example's
    stage 1): write a ``.pth`` of its network."""
    from framework.models.sr_model import build_network
    from framework.options import load_options

    options = load_options(str(REPO / rel), require_train=require_train)
    weights = options.path.pretrain_path
    if weights and not os.path.exists(weights):
        os.makedirs(os.path.dirname(weights) or ".", exist_ok=True)
        torch.save({"params": build_network(options).state_dict()}, weights)


@pytest.mark.parametrize("rel", SHIPPED or [pytest.param("none", marks=pytest.mark.skip(reason="no options/**/*.yml"))])
def test_shipped_option_files_pass_dry_run(rel: str, example_datasets: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Every shipped option file passes ``--dry-run`` (train.py, or test.py for options/test/), writing nothing."""
    is_test = Path(rel).parts[:2] == ("options", "test")
    if is_test:
        main, extra = cli.test_main, []
    else:
        main, extra = train_main, ["--no-progress"]
    work = tmp_path / "work"
    work.mkdir()
    (work / "datasets").symlink_to(example_datasets, target_is_directory=True)
    for out in ("weights", "experiments"):
        (work / out).mkdir()
        (work / out / "sentinel.txt").write_text(f"{out} sentinel\n")
    monkeypatch.chdir(work)
    _fake_pretrained_weights(rel, require_train=not is_test)
    before = snapshot(work)
    capsys.readouterr()
    rc = run_main(main, ["-opt", str(REPO / rel), "--dry-run", *extra])
    out, err = capsys.readouterr()
    assert rc == 0, f"{rel}: exit code {rc}\n{err}"
    assert "Traceback" not in err
    assert_unchanged(before, snapshot(work), f"{rel} --dry-run")
