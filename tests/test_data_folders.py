"""Several data folders per phase: ``dataroot_gt`` / ``dataroot_lq`` as lists (traiNNer-redux's), GT folder i
paired with LQ folder i, the set the union of their pairs, for folders, LMDBs and ``meta_info_file`` alike; a
missing folder is an option error at its own line."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from framework.data.datasets import BicubicSRDataset, PairedImageDataset
from framework.errors import OptionError
from framework.tools import create_lmdb

from .conftest import make_paired_folders
from .test_option_errors import assert_user_error
from .tinyrun import run_train, write_options

LMDB = {"type": "lmdb"}


def _two_sets(root: Path) -> dict:
    """Two GT/LQ folder pairs that share a file name (``same``): it must stay two images."""
    first = make_paired_folders(root / "a", ["same", "a1"], seed=0)
    second = make_paired_folders(root / "b", ["same", "b1", "b2"], seed=10)
    return {"a": first, "b": second}


def _pixels(dataset: PairedImageDataset) -> list:
    return sorted((tuple(dataset[i]["gt"].flatten()[:8].tolist()), tuple(dataset[i]["lq"].flatten()[:8].tolist()))
                  for i in range(len(dataset)))


def _single(root: Path, name: str, **kwargs: object) -> PairedImageDataset:
    return PairedImageDataset(str(root / name / "gt"), str(root / name / "lq"), scale=2, **kwargs)


def test_two_folders_give_the_union_of_their_pairs(tmp_path: Path) -> None:
    _two_sets(tmp_path)
    both = PairedImageDataset([str(tmp_path / "a/gt"), str(tmp_path / "b/gt")],  # type: ignore[arg-type]
                              [str(tmp_path / "a/lq"), str(tmp_path / "b/lq")], scale=2)
    assert len(both) == 5
    assert _pixels(both) == sorted(_pixels(_single(tmp_path, "a")) + _pixels(_single(tmp_path, "b")))
    for i in range(len(both)):  # every pair is a true pair: GT is the nearest upsampling of its own LQ
        sample = both[i]
        assert torch.equal(sample["gt"], sample["lq"].repeat_interleave(2, 1).repeat_interleave(2, 2))
    bicubic = BicubicSRDataset([str(tmp_path / "a/gt"), str(tmp_path / "b/gt")], scale=2)  # type: ignore[arg-type]
    assert len(bicubic) == 5


def test_lists_of_lmdbs_and_of_meta_info_files(tmp_path: Path) -> None:
    _two_sets(tmp_path)
    for name in ("a", "b"):
        assert create_lmdb.main(["--input", str(tmp_path / name / "gt"), "--output", str(tmp_path / f"{name}_gt.lmdb"),
                                 "--lq", str(tmp_path / name / "lq"), "--lq-output", str(tmp_path / f"{name}_lq.lmdb"),
                                 "--workers", "1"]) == 0
    packed = PairedImageDataset([str(tmp_path / "a_gt.lmdb"), str(tmp_path / "b_gt.lmdb")],  # type: ignore[arg-type]
                                [str(tmp_path / "a_lq.lmdb"), str(tmp_path / "b_lq.lmdb")], scale=2, io_backend=LMDB)
    folders = PairedImageDataset([str(tmp_path / "a/gt"), str(tmp_path / "b/gt")],  # type: ignore[arg-type]
                                 [str(tmp_path / "a/lq"), str(tmp_path / "b/lq")], scale=2)
    assert _pixels(packed) == _pixels(folders)
    (tmp_path / "a.txt").write_text("a1.png\n")
    (tmp_path / "b.txt").write_text("same.png (24,20,3) 1\nb2.png\n")
    listed = PairedImageDataset([str(tmp_path / "a/gt"), str(tmp_path / "b/gt")],  # type: ignore[arg-type]
                                [str(tmp_path / "a/lq"), str(tmp_path / "b/lq")], scale=2,
                                meta_info_file=[str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])  # type: ignore
    assert len(listed) == 3
    with pytest.raises(OptionError) as one_file:
        PairedImageDataset([str(tmp_path / "a/gt"), str(tmp_path / "b/gt")],  # type: ignore[arg-type]
                           [str(tmp_path / "a/lq"), str(tmp_path / "b/lq")], scale=2,
                           meta_info_file=str(tmp_path / "a.txt"))
    assert one_file.value.path == ("meta_info_file",) and "one per folder" in one_file.value.detail
    with pytest.raises(OptionError) as uneven:
        PairedImageDataset([str(tmp_path / "a/gt"), str(tmp_path / "b/gt")],  # type: ignore[arg-type]
                           str(tmp_path / "a/lq"), scale=2)
    assert uneven.value.path == ("dataroot_lq",) and "pair in order" in uneven.value.detail


def test_a_missing_folder_of_a_list_is_an_option_error_at_its_line(workdir: Path) -> None:
    make_paired_folders(workdir / "more", ["x"], lq_size=(16, 16))
    opt = write_options(workdir)
    raw = yaml.safe_load(opt.read_text())
    train = raw["datasets"]["train"]
    train["dataroot_gt"] = [train["dataroot_gt"], "more/gt", "nowhere/gt"]
    train["dataroot_lq"] = [train["dataroot_lq"], "more/lq", "nowhere/lq"]
    opt.write_text(yaml.safe_dump(raw, default_flow_style=False))
    line = next(i for i, text in enumerate(opt.read_text().splitlines(), 1) if "nowhere/gt" in text)
    result = run_train(workdir, ["-opt", str(opt), "--dry-run"])
    assert_user_error(result.returncode, result.stderr, [f"{opt}:{line}: datasets.train.dataroot_gt[2]: folder "
                                                         "'nowhere/gt' does not exist"], "missing folder")
    assert not (workdir / "experiments").exists() and not (workdir / "weights").exists()
    train["dataroot_gt"], train["dataroot_lq"] = train["dataroot_gt"][:2], train["dataroot_lq"][:2]
    opt.write_text(yaml.safe_dump(raw, default_flow_style=False))
    result = run_train(workdir, ["-opt", str(opt), "--dry-run"])
    assert result.returncode == 0, result.stderr
    assert "train set: 6 images" in result.stdout  # the 5 of data/train and the one of more/
