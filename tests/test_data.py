"""Datasets (pairing, crops, alignment, augmentation, determinism) and the resumable sampler."""
from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from framework.data.datasets import BicubicSRDataset, PairedImageDataset
from framework.data.degradations import bicubic_downsample
from framework.data.sampler import ResumableSampler
from framework.errors import UserError

SCALE = 2


def _u8(img: torch.Tensor) -> torch.Tensor:
    """float [0, 1] from the dataset -> the uint8 values that were written (exact for PNG)."""
    return (img * 255.0).round().to(torch.uint8)


def _dihedral(img: torch.Tensor, h: bool, v: bool, t: bool) -> torch.Tensor:
    if h:
        img = img.flip(-1)
    if v:
        img = img.flip(-2)
    if t:
        img = img.transpose(-1, -2)
    return img


def _locate(lq_crop: torch.Tensor, lq_full: torch.Tensor):
    """All (transform, top, left) with lq_crop == transform(lq_full[top:top+s, left:left+s])."""
    size = lq_crop.shape[-1]
    _, h, w = lq_full.shape
    found = []
    for hvt in itertools.product((False, True), repeat=3):
        for top in range(h - size + 1):
            for left in range(w - size + 1):
                region = lq_full[:, top:top + size, left:left + size]
                if torch.equal(_dihedral(region, *hvt), lq_crop):
                    found.append((hvt, top, left))
    return found


@pytest.fixture
def paired(tmp_path, helpers):
    written = helpers.make_paired_folders(tmp_path, ["a", "b", "c"], scale=SCALE, lq_size=(12, 10))
    return tmp_path, written


def _dataset(root, train=True, gt_size=8, **kw):
    return PairedImageDataset(str(root / "gt"), str(root / "lq"), scale=SCALE, seed=kw.pop("seed", 7),
                              train=train, gt_size=gt_size, **kw)


# ------------------------------------------------------------------------------------------- pairing


def test_pairs_matched_by_name_with_other_extensions(tmp_path, helpers) -> None:
    helpers.make_paired_folders(tmp_path, ["x1", "x0", "sub/y"], lq_ext=".jpg")
    ds = PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=SCALE)
    assert sorted(ds.pairs) == [("sub/y.png", "sub/y.jpg"), ("x0.png", "x0.jpg"), ("x1.png", "x1.jpg")]
    assert len(ds) == 3
    names = [ds[i]["name"] for i in range(len(ds))]
    assert sorted(names) == ["sub/y", "x0", "x1"]
    for i in range(len(ds)):
        sample = ds[i]
        assert sample["gt"].shape == (3, 24, 20) and sample["lq"].shape == (3, 12, 10)
        assert sample["gt_path"].endswith(".png") and sample["lq_path"].endswith(".jpg")


def test_filename_tmpl(tmp_path, helpers) -> None:
    helpers.make_paired_folders(tmp_path, ["0001", "0002"], lq_tmpl="{}x2")
    ds = PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=SCALE, filename_tmpl="{}x2")
    assert sorted(ds.pairs) == [("0001.png", "0001x2.png"), ("0002.png", "0002x2.png")]
    with pytest.raises(UserError):
        PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=SCALE)  # default '{}' does not fit


def test_unmatched_files_are_listed(tmp_path, helpers) -> None:
    helpers.make_paired_folders(tmp_path, ["a", "b"])
    helpers.save_image(helpers.random_image(24, 20, 99), tmp_path / "gt" / "only_gt.png")
    helpers.save_image(helpers.random_image(12, 10, 98), tmp_path / "lq" / "only_lq.png")
    with pytest.raises(UserError) as info:
        PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=SCALE)
    message = str(info.value)
    assert "only_gt.png" in message and "only_lq.png" in message
    assert "a.png" not in message and "b.png" not in message
    assert len(message.splitlines()) == 1


def test_missing_folder_is_user_error(tmp_path, helpers) -> None:
    helpers.make_paired_folders(tmp_path, ["a"])
    with pytest.raises(UserError, match="dataroot_lq"):
        PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "nope"), scale=SCALE)


# --------------------------------------------------------------------------------------- crops, augmentation


def test_validation_sample_is_whole_image(paired) -> None:
    root, written = paired
    ds = _dataset(root, train=False, gt_size=None)
    for i in range(len(ds)):
        s = ds[i]
        name = s["name"]
        assert torch.equal(_u8(s["gt"]), written[name]["gt"])
        assert torch.equal(_u8(s["lq"]), written[name]["lq"])
    assert torch.equal(ds[(5, 1)]["gt"], ds[1]["gt"])  # no randomness outside training


def test_crop_sizes_and_alignment_without_augmentation(paired) -> None:
    root, written = paired
    gt_size = 8
    ds = _dataset(root, gt_size=gt_size, use_hflip=False, use_rot=False)
    tops_lefts = set()
    for epoch in range(6):
        for i in range(len(ds)):
            s = ds[(epoch, i)]
            assert s["gt"].shape == (3, gt_size, gt_size)
            assert s["lq"].shape == (3, gt_size // SCALE, gt_size // SCALE)
            full = written[s["name"]]
            lq, gt = _u8(s["lq"]), _u8(s["gt"])
            found = _locate(lq, full["lq"])
            assert found, "LQ crop is not a region of the LQ image"
            identity = [(top, left) for hvt, top, left in found if hvt == (False, False, False)]
            assert len(identity) == 1
            top, left = identity[0]
            expected_gt = full["gt"][:, top * SCALE:(top + gt_size // SCALE) * SCALE,
                                     left * SCALE:(left + gt_size // SCALE) * SCALE]
            assert torch.equal(gt, expected_gt)
            tops_lefts.add((top, left))
    assert len(tops_lefts) > 3  # the crop position is random


def test_augmentation_is_the_same_for_gt_and_lq(paired) -> None:
    root, written = paired
    gt_size = 8
    ds = _dataset(root, gt_size=gt_size, use_hflip=True, use_rot=True)
    transforms = Counter()
    for epoch in range(12):
        for i in range(len(ds)):
            s = ds[(epoch, i)]
            full = written[s["name"]]
            lq, gt = _u8(s["lq"]), _u8(s["gt"])
            found = _locate(lq, full["lq"])
            assert found
            for hvt, top, left in found:  # random pixels: normally exactly one candidate
                region = full["gt"][:, top * SCALE:top * SCALE + gt_size, left * SCALE:left * SCALE + gt_size]
                assert torch.equal(gt, _dihedral(region, *hvt)), "GT got another transform than LQ"
            transforms[found[0][0]] += 1
    assert len(transforms) >= 6, transforms  # 36 draws of 8 equally likely transforms: the flips are used


def test_no_augmentation_flags(paired) -> None:
    root, written = paired
    ds = _dataset(root, gt_size=8, use_hflip=False, use_rot=False)
    for epoch in range(4):
        s = ds[(epoch, 0)]
        found = _locate(_u8(s["lq"]), written[s["name"]]["lq"])
        assert [hvt for hvt, _, _ in found] == [(False, False, False)]


def test_same_key_same_sample_other_epoch_other_crop(paired) -> None:
    root, _ = paired
    ds = _dataset(root, gt_size=8)
    again = _dataset(root, gt_size=8)  # a fresh instance (another worker, a resumed run)
    a, b = ds[(3, 1)], again[(3, 1)]
    assert torch.equal(a["gt"], b["gt"]) and torch.equal(a["lq"], b["lq"])
    assert torch.equal(ds[(3, 1)]["lq"], a["lq"])  # and repeatable on the same instance
    others = [ds[(e, 1)]["lq"] for e in (0, 1, 2, 4)]
    assert all(not torch.equal(o, a["lq"]) for o in others)
    # the seed matters too
    other_seed = _dataset(root, gt_size=8, seed=8)
    assert not torch.equal(other_seed[(3, 1)]["lq"], a["lq"])


def test_training_set_needs_valid_gt_size(paired) -> None:
    root, _ = paired
    with pytest.raises(UserError, match="gt_size"):
        _dataset(root, gt_size=None)
    with pytest.raises(UserError, match="multiple of scale"):
        _dataset(root, gt_size=7)
    with pytest.raises(UserError, match="smaller than the crop"):
        _dataset(root, gt_size=24)[(0, 0)]  # LQ is 12x10, the crop would be 12x12


# ------------------------------------------------------------------------------------------- bicubic


def test_bicubic_dataset_shapes(tmp_path, helpers) -> None:
    for i, name in enumerate(["p", "q"]):
        helpers.save_image(helpers.random_image(25, 21, i), tmp_path / "hr" / f"{name}.png")
    val = BicubicSRDataset(str(tmp_path / "hr"), scale=SCALE)
    s = val[0]
    assert s["gt"].shape == (3, 24, 20)  # mod-cropped to the scale
    assert s["lq"].shape == (3, 12, 10)
    assert torch.allclose(s["lq"], bicubic_downsample(s["gt"], SCALE))
    train = BicubicSRDataset(str(tmp_path / "hr"), scale=SCALE, seed=1, train=True, gt_size=8)
    t = train[(0, 1)]
    assert t["gt"].shape == (3, 8, 8) and t["lq"].shape == (3, 4, 4)
    # LQ equals the crop of the whole-image downsampling (not a downsampling of the GT crop, whose borders
    # differ): see test_bicubic_dataset_crops_match_downsampling_the_whole_image
    assert torch.equal(train[(0, 1)]["gt"], t["gt"])
    assert len(train) == 2 and t["name"] == "q"


# ------------------------------------------------------------------------------------------- sampler


def _keys(sampler) -> list:
    return list(iter(sampler))


def test_sampler_order_depends_only_on_seed_and_epoch() -> None:
    a = ResumableSampler(10, seed=5)
    b = ResumableSampler(10, seed=5)
    _keys(b)  # iterating changes nothing
    b.set_position(3, 4)
    _keys(b)
    for epoch in (0, 1, 2):
        a.set_position(epoch)
        b.set_position(epoch)
        ka, kb = _keys(a), _keys(b)
        assert ka == kb
        assert all(e == epoch for e, _ in ka)
        assert sorted(i for _, i in ka) == list(range(10))
    a.set_position(0)
    e0 = [i for _, i in _keys(a)]
    a.set_position(1)
    e1 = [i for _, i in _keys(a)]
    assert e0 != e1
    c = ResumableSampler(10, seed=6)
    assert [i for _, i in _keys(c)] != e0
    seq = ResumableSampler(5, seed=5, shuffle=False)
    seq.set_position(2)
    assert _keys(seq) == [(2, i) for i in range(5)]


@pytest.mark.parametrize("skip", [0, 1, 7, 19, 20])
def test_set_position_yields_tail_of_epoch(skip) -> None:
    full_sampler = ResumableSampler(10, seed=3, enlarge_ratio=2)
    full_sampler.set_position(4)
    full = _keys(full_sampler)
    s = ResumableSampler(10, seed=3, enlarge_ratio=2)
    s.set_position(4, skip)
    assert _keys(s) == full[skip:]
    assert len(s) == len(full) - skip
    s.set_position(4)
    assert _keys(s) == full and len(s) == 20


def test_enlarge_ratio() -> None:
    s = ResumableSampler(6, seed=0, enlarge_ratio=3)
    assert len(s) == s.per_epoch == 18
    positions = [p for _, p in _keys(s)]
    assert sorted(positions) == list(range(18))  # distinct positions: each repeat gets its own crop
    assert Counter(p % 6 for p in positions) == {i: 3 for i in range(6)}  # each image three times


class _CountingDataset(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n
        self.loaded = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        self.loaded.append(key)
        epoch, index = key
        return torch.tensor([epoch, index])


def test_skipped_samples_are_never_loaded() -> None:
    ds = _CountingDataset(8)
    sampler = ResumableSampler(len(ds), seed=11, enlarge_ratio=2)
    sampler.set_position(2)
    full = _keys(sampler)
    skip = 6
    sampler.set_position(2, skip)
    loader = DataLoader(ds, batch_size=2, sampler=sampler, drop_last=True, num_workers=0)
    assert len(loader) == (16 - skip) // 2
    batches = [b for b in loader]
    assert ds.loaded == full[skip:]
    got = [tuple(row.tolist()) for b in batches for row in b]
    assert got == full[skip:]
    assert Counter(ds.loaded) == Counter(full[skip:])  # no key of the skipped head was touched


@pytest.mark.parametrize("gt_hw,lq_hw", [((32, 32), (8, 8)), ((20, 20), (12, 12))])
def test_validation_pair_of_wrong_scale_is_an_error(tmp_path, helpers, gt_hw, lq_hw) -> None:
    helpers.save_image(helpers.random_image(*gt_hw, seed=1), tmp_path / "gt" / "a.png")
    helpers.save_image(helpers.random_image(*lq_hw, seed=2), tmp_path / "lq" / "a.png")
    ds = PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=SCALE)
    with pytest.raises(UserError, match="not x2"):
        ds[0]


def test_validation_gt_remainder_is_cropped(tmp_path, helpers) -> None:
    """A GT one pixel larger than LQ*scale (odd-sized originals) is cropped to fit, as BasicSR does."""
    helpers.save_image(helpers.random_image(25, 21, seed=1), tmp_path / "gt" / "a.png")
    helpers.save_image(helpers.random_image(12, 10, seed=2), tmp_path / "lq" / "a.png")
    s = PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), scale=SCALE)[0]
    assert s["gt"].shape == (3, 24, 20) and s["lq"].shape == (3, 12, 10)


def test_enlarged_repeats_of_an_image_get_different_crops(tmp_path) -> None:
    from framework.data.example_data import generate_example_data
    from framework.data.datasets import PairedImageDataset

    generate_example_data(tmp_path / "d", num_train=2, num_val=1, size=32, scale=2)
    ds = PairedImageDataset(str(tmp_path / "d/train/HR"), str(tmp_path / "d/train/LR_x2"), scale=2, seed=0,
                            train=True, gt_size=8)
    first, repeat = ds[(0, 0)], ds[(0, 2)]  # position 2 is image 0 again (2 images)
    assert first["name"] == repeat["name"]
    assert not torch.equal(first["gt"], repeat["gt"])


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_dataset_crops_match_downsampling_the_whole_image(tmp_path, scale: int) -> None:
    """Training LQ (downsampled crop + margin) == the crop of the whole-image downsampling validation uses."""
    import os

    from framework.data.datasets import BicubicSRDataset
    from framework.data.degradations import bicubic_downsample
    from framework.data.example_data import generate_example_data
    from framework.data.image_io import read_image
    from framework.data.transforms import mod_crop

    generate_example_data(tmp_path / "e", num_train=2, num_val=1, size=64, scale=2)
    root = str(tmp_path / "e/train/HR")
    ds = BicubicSRDataset(root, scale=scale, seed=1, train=True, gt_size=8 * scale, use_hflip=False,
                          use_rot=False)
    for pos in range(12):
        sample = ds[(0, pos)]
        gt = mod_crop(read_image(os.path.join(root, ds.files[pos % 2])), scale)
        full = bicubic_downsample(gt, scale)
        hits = [(t, x) for t in range(full.shape[1] - 7) for x in range(full.shape[2] - 7)
                if torch.equal(gt[:, t * scale:(t + 8) * scale, x * scale:(x + 8) * scale], sample["gt"])]
        assert hits, "the GT crop is not aligned to the LQ grid"
        t, x = hits[0]
        assert torch.equal(full[:, t:t + 8, x:x + 8], sample["lq"])
