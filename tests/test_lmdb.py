"""LMDB (scripts/create_lmdb.py, io_backend: {type: lmdb}) and meta_info_file: same pixels and batches as the
folders they came from; BasicSR's layout loads."""
from __future__ import annotations

import io
import os
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from framework.data.datasets import BicubicSRDataset, PairedImageDataset
from framework.data.sampler import ResumableSampler
from framework.errors import OptionError, UserError
from framework.tools import create_lmdb

from .conftest import make_paired_folders
from .tinyrun import make_data, tiny_options, train_in_process, write_options

LMDB = {"type": "lmdb"}


def _pack(src: Path, out: Path) -> None:
    assert create_lmdb.main(["--input", str(src / "gt"), "--output", str(out / "gt.lmdb"), "--lq", str(src / "lq"),
                             "--lq-output", str(out / "lq.lmdb"), "--workers", "1"]) == 0


def _folder_and_lmdb(tmp_path: Path, **kwargs: object):
    make_paired_folders(tmp_path / "src", [f"im{i:02d}" for i in range(6)], lq_size=(12, 14))
    _pack(tmp_path / "src", tmp_path)
    folder = PairedImageDataset(str(tmp_path / "src/gt"), str(tmp_path / "src/lq"), scale=2, **kwargs)
    packed = PairedImageDataset(str(tmp_path / "gt.lmdb"), str(tmp_path / "lq.lmdb"), scale=2, io_backend=LMDB,
                                **kwargs)
    return folder, packed


def test_lmdb_layout_is_basicsr_s(tmp_path: Path) -> None:
    make_paired_folders(tmp_path / "src", ["b", "a"], lq_size=(12, 14))
    _pack(tmp_path / "src", tmp_path)
    assert sorted(os.listdir(tmp_path / "gt.lmdb")) == ["data.mdb", "lock.mdb", "meta_info.txt"]
    assert (tmp_path / "gt.lmdb/meta_info.txt").read_text() == "a.png (24,28,3) -1\nb.png (24,28,3) -1\n"
    with lmdb.open(str(tmp_path / "lq.lmdb"), readonly=True, lock=False) as env, env.begin() as txn:
        assert txn.get(b"a") == (tmp_path / "src/lq/a.png").read_bytes()  # the file, unchanged
        assert sorted(k for k, _ in txn.cursor()) == [b"a", b"b"]


def test_lmdb_round_trip_gives_the_folder_s_pixels(tmp_path: Path) -> None:
    folder, packed = _folder_and_lmdb(tmp_path)
    assert len(folder) == len(packed) == 6
    for i in range(6):
        a, b = folder[i], packed[i]
        assert torch.equal(a["gt"], b["gt"]) and torch.equal(a["lq"], b["lq"]) and a["name"] == b["name"]
    assert packed[0]["gt_path"].endswith("gt.lmdb:im00")
    folder.verify_files()
    packed.verify_files()  # sizes from meta_info.txt


def test_lmdb_training_batches_equal_the_folder_s_with_workers(tmp_path: Path) -> None:
    folder, packed = _folder_and_lmdb(tmp_path, train=True, gt_size=8, seed=3)

    def batches(dataset: PairedImageDataset, workers: int) -> list:
        sampler = ResumableSampler(len(dataset), seed=3, enlarge_ratio=3, shuffle=True)
        loader = DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=workers, drop_last=True)
        return [(b["gt"], b["lq"]) for b in loader]

    packed.gt_source.read(packed.pairs[0][0])  # the parent opened the env: each worker must open its own
    expected = batches(folder, 0)
    got = batches(packed, 2)
    assert len(expected) == len(got) == 4
    for (gt_a, lq_a), (gt_b, lq_b) in zip(expected, got, strict=True):
        assert torch.equal(gt_a, gt_b) and torch.equal(lq_a, lq_b)


def test_bicubic_dataset_reads_lmdb(tmp_path: Path) -> None:
    make_paired_folders(tmp_path / "src", ["x", "y"], lq_size=(12, 14))
    assert create_lmdb.main(["--input", str(tmp_path / "src/gt"), "--output", str(tmp_path / "gt.lmdb"),
                             "--workers", "1"]) == 0
    a = BicubicSRDataset(str(tmp_path / "src/gt"), scale=2, train=True, gt_size=8, seed=1)
    b = BicubicSRDataset(str(tmp_path / "gt.lmdb"), scale=2, train=True, gt_size=8, seed=1, io_backend=LMDB)
    for pos in range(4):
        assert torch.equal(a[(0, pos)]["lq"], b[(0, pos)]["lq"])


def test_an_lmdb_written_as_basicsr_writes_it_loads(tmp_path: Path) -> None:
    """BasicSR's make_lmdb_from_imgs: PNGs encoded by OpenCV at compress_level 1 under '<name>' keys, and
    meta_info.txt lines '<name>.png (h,w,c) 1'. Here Pillow encodes (OpenCV is not a dependency)."""
    rng = np.random.default_rng(0)
    images = {}
    for side in ("lq", "gt"):
        env = lmdb.open(str(tmp_path / f"{side}.lmdb"), map_size=1 << 24)
        lines = []
        with env.begin(write=True) as txn:
            for i in range(3):
                key = f"0001_s{i + 1:03d}"
                if side == "lq":
                    img = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
                    images[key] = img
                else:
                    img = images[key].repeat(2, axis=0).repeat(2, axis=1)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="PNG", compress_level=1)
                txn.put(key.encode("ascii"), buf.getvalue())
                lines.append(f"{key}.png ({img.shape[0]},{img.shape[1]},3) 1\n")
        env.close()
        (tmp_path / f"{side}.lmdb" / "meta_info.txt").write_text("".join(lines))
    ds = PairedImageDataset(str(tmp_path / "gt.lmdb"), str(tmp_path / "lq.lmdb"), scale=2, io_backend=LMDB)
    ds.verify_files()
    assert [s["name"] for s in (ds[i] for i in range(3))] == ["0001_s001", "0001_s002", "0001_s003"]
    lq = ds[1]["lq"]
    assert torch.equal((lq * 255).round().to(torch.uint8), torch.from_numpy(images["0001_s002"]).permute(2, 0, 1))


def test_create_lmdb_resumes_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_paired_folders(tmp_path / "src", [f"n{i}" for i in range(7)])
    argv = ["--input", str(tmp_path / "src/gt"), "--output", str(tmp_path / "gt.lmdb"), "--workers", "1"]
    real = create_lmdb.read_entry
    calls = []

    def interrupted(item, folder):  # noqa: ANN001, ANN202
        calls.append(item)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(item, folder)

    monkeypatch.setattr(create_lmdb, "COMMIT_IMAGES", 2)
    monkeypatch.setattr(create_lmdb, "read_entry", interrupted)
    with pytest.raises(KeyboardInterrupt):
        create_lmdb.main(argv)
    assert not (tmp_path / "gt.lmdb").exists() and (tmp_path / "gt.lmdb.partial").is_dir()
    monkeypatch.setattr(create_lmdb, "read_entry", real)
    calls.clear()
    assert create_lmdb.main(argv) == 0
    assert not (tmp_path / "gt.lmdb.partial").exists()
    meta = (tmp_path / "gt.lmdb/meta_info.txt").read_text().splitlines()
    assert [line.split()[0] for line in meta] == [f"n{i}.png" for i in range(7)]
    with lmdb.open(str(tmp_path / "gt.lmdb"), readonly=True, lock=False) as env, env.begin() as txn:
        assert env.stat()["entries"] == 7
        for i in range(7):
            assert txn.get(f"n{i}".encode()) == (tmp_path / f"src/gt/n{i}.png").read_bytes()
    with pytest.raises(UserError, match="already exists"):
        create_lmdb.main(argv)


def test_meta_info_file_chooses_the_images(tmp_path: Path) -> None:
    make_paired_folders(tmp_path, ["a", "b", "c"], lq_tmpl="{}x2")
    listing = tmp_path / "meta_info.txt"
    listing.write_text("c.png (24,20,3) 1\na.png (24,20,3) 1\n")  # BasicSR's lines; its order is kept
    ds = PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=2, filename_tmpl="{}x2",
                            meta_info_file=str(listing))
    assert [ds[i]["name"] for i in range(len(ds))] == ["c", "a"]
    assert ds[0]["lq_path"] == str(tmp_path / "lq" / "cx2.png")
    (tmp_path / "plain.txt").write_text("b.png\n")
    assert len(BicubicSRDataset(str(tmp_path / "gt"), scale=2, meta_info_file=str(tmp_path / "plain.txt"))) == 1
    (tmp_path / "bad.txt").write_text("a.png 24x20\n")
    with pytest.raises(OptionError, match=r"bad.txt, line 1: expected 'name \(h,w,c\) compression'"):
        PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=2,
                           meta_info_file=str(tmp_path / "bad.txt"))
    (tmp_path / "missing.txt").write_text("zz.png\n")
    ds = PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=2,
                            meta_info_file=str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match="zz.png: cannot read image"):
        ds.verify_files()


def test_training_run_reads_lmdb(workdir: Path) -> None:
    make_data(workdir)
    for phase in ("train", "val"):
        for side, sub in (("gt", "HR"), ("lq", "LR_x2")):
            assert create_lmdb.main(["--input", f"data/{phase}/{sub}", "--output", f"lmdb/{phase}_{side}.lmdb",
                                     "--workers", "1"]) == 0
    opt = tiny_options()
    changes = {"train.total_iter": 4, "val.val_freq": 4}
    for phase in ("train", "val"):
        changes[f"datasets.{phase}.io_backend"] = LMDB
        changes[f"datasets.{phase}.dataroot_gt"] = f"lmdb/{phase}_gt.lmdb"
        changes[f"datasets.{phase}.dataroot_lq"] = f"lmdb/{phase}_lq.lmdb"
    assert opt["datasets"]["train"]["type"] == "PairedImageDataset"
    assert train_in_process(write_options(workdir, **changes)) == 0
