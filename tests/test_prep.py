"""Data preparation: sub-image extraction, LR generation (MATLAB imresize), and what they write."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from framework.data.degradations import bicubic_downsample, bicubic_upsample, imresize
from framework.data.image_io import decode_file, write_image
from framework.tools import extract_subimages, generate_lr
from framework.tools.extract_subimages import crop_grid, crop_starts

from .matlab_imresize import matlab_imresize, matlab_resize_1d

def test_matlab_imresize_published_values() -> None:
    # MATLAB: imresize(1:8, 0.5) = 1.4492 3.4883 5.5117 7.5508 (the reference loop gives these to 1e-8).
    ramp = np.arange(1, 9, dtype=np.float64)
    expected = [1.44921875, 3.48828125, 5.51171875, 7.55078125]
    assert np.allclose(matlab_resize_1d(ramp, 0.5), expected, atol=1e-8)
    ours = imresize(torch.tensor(ramp / 10).view(1, 1, 8).expand(1, 2, 8).contiguous(), 2, shrink=True)[0, 0]
    assert np.allclose(ours.numpy() * 10, expected, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_downsample_equalsmatlab_imresize(scale: int) -> None:
    rng = np.random.default_rng(scale)
    img = rng.uniform(0.1, 0.9, (2, 6 * scale, 5 * scale))  # smooth enough that nothing is clamped
    img = (img + np.roll(img, 1, axis=1) + np.roll(img, 1, axis=2)) / 3
    expected = matlab_imresize(img, 1 / scale)
    ours = bicubic_downsample(torch.from_numpy(img).float(), scale)
    assert ours.shape == expected.shape == (2, 6, 5)
    assert np.abs(ours.numpy() - expected).max() < 1e-4


def test_bicubic_upsample_equalsmatlab_imresize() -> None:
    img = np.random.default_rng(0).uniform(0.3, 0.7, (1, 5, 4))
    expected = matlab_imresize(img, 2)
    assert np.abs(bicubic_upsample(torch.from_numpy(img).float(), 2).numpy() - expected).max() < 1e-4


def test_generate_lr_writesmatlab_imresize(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    hr = rng.integers(40, 216, (3, 13, 18)).astype(np.uint8)  # 13 rows: cropped to 12 for x4
    write_image(torch.from_numpy(hr), str(tmp_path / "hr" / "a.png"))
    assert generate_lr.main(["--input", str(tmp_path / "hr"), "--output", str(tmp_path / "lr"), "--scale", "4",
                             "--suffix", "x4", "--workers", "1"]) == 0
    lr = decode_file(str(tmp_path / "lr" / "ax4.png")).numpy().astype(np.float64)
    expected = matlab_imresize(hr[:, :12, :16].astype(np.float64) / 255, 0.25) * 255
    assert lr.shape == (3, 3, 4)
    settled = np.abs(expected - np.floor(expected) - 0.5) > 1e-3  # not on a rounding edge
    assert np.array_equal(lr[settled], np.round(expected[settled]))
    assert np.abs(lr - expected).max() <= 0.5 + 1e-3
    mtime = os.path.getmtime(tmp_path / "lr" / "ax4.png")
    assert generate_lr.main(["--input", str(tmp_path / "hr"), "--output", str(tmp_path / "lr"), "--scale", "4",
                             "--suffix", "x4", "--workers", "1"]) == 0
    assert os.path.getmtime(tmp_path / "lr" / "ax4.png") == mtime  # done files are skipped


# ----------------------------------------------------------------------------------------------------------------
# Sub-images


def test_crop_grid_counts_positions_and_edge_crops() -> None:
    assert crop_starts(1000, 480, 240, 0) == [0, 240, 480, 520]  # 480 + 480 = 960 < 1000: edge crop at 520
    assert crop_starts(960, 480, 240, 0) == [0, 240, 480]  # ends exactly at the edge: no extra crop
    assert crop_starts(1000, 480, 240, 40) == [0, 240, 480]  # 40 pixels left over: within the threshold
    assert crop_starts(1000, 480, 240, 39) == [0, 240, 480, 520]
    assert crop_starts(479, 480, 240, 0) == []
    assert crop_starts(480, 480, 240, 0) == [0]
    # DIV2K's 2040x1356 at BasicSR's settings: 5 rows (0 ... 720, edge 876) x 8 columns (0 ... 1440, edge 1560)
    grid = crop_grid(1356, 2040, 480, 240, 0)
    assert len(grid) == 40 and grid[0] == (0, 0) and grid[7] == (0, 1560) and grid[-1] == (876, 1560)


def _image(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


def test_extract_crops_gt_and_lq_at_the_same_places(tmp_path: Path) -> None:
    gt = _image(40, 52, 0)
    lq = _image(10, 13, 1)
    write_image(gt, str(tmp_path / "hr" / "img.png"))
    write_image(lq, str(tmp_path / "lr" / "imgx4.png"))
    code = extract_subimages.main(["--input", str(tmp_path / "hr"), "--output", str(tmp_path / "hr_sub"),
                                   "--lq", str(tmp_path / "lr"), "--lq-output", str(tmp_path / "lr_sub"),
                                   "--scale", "4", "--lq-tmpl", "{}x4", "--crop-size", "16", "--step", "12",
                                   "--workers", "1"])
    assert code == 0
    grid = crop_grid(10, 13, 4, 3, 0)  # on the LQ grid: rows 0 3 6, columns 0 3 6 9
    assert grid == [(t, left) for t in (0, 3, 6) for left in (0, 3, 6, 9)]
    names = sorted(os.listdir(tmp_path / "hr_sub"))
    assert names == sorted(os.listdir(tmp_path / "lr_sub")) == [f"img_s{i:03d}.png" for i in range(1, 13)]
    for i, (top, left) in enumerate(grid):
        sub_gt = decode_file(str(tmp_path / "hr_sub" / f"img_s{i + 1:03d}.png"))
        sub_lq = decode_file(str(tmp_path / "lr_sub" / f"img_s{i + 1:03d}.png"))
        assert torch.equal(sub_gt, gt[:, top * 4:top * 4 + 16, left * 4:left * 4 + 16])
        assert torch.equal(sub_lq, lq[:, top:top + 4, left:left + 4])


def test_interrupted_extraction_resumes_without_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    for i in range(3):
        write_image(_image(30, 30, i), str(tmp_path / "hr" / f"{i}.png"))
    argv = ["--input", str(tmp_path / "hr"), "--crop-size", "16", "--step", "10", "--workers", "1"]
    assert extract_subimages.main(argv + ["--output", str(tmp_path / "clean")]) == 0
    expected = sorted(os.listdir(tmp_path / "clean"))
    assert len(expected) == 3 * 9  # starts 0, 10, 14 per side

    real_write = extract_subimages.write_image
    calls = []

    def interrupted_write(img: torch.Tensor, path: str, level: int = 6) -> None:
        calls.append(path)
        if len(calls) == 11:  # killed while writing the 11th file: a temporary file is left behind
            Path(path).with_name(f".{Path(path).name}.abc123.tmp").write_bytes(b"half")
            raise KeyboardInterrupt
        real_write(img, path, level)

    monkeypatch.setattr(extract_subimages, "write_image", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        extract_subimages.main(argv + ["--output", str(tmp_path / "out")])
    assert len(os.listdir(tmp_path / "out")) == 11  # 10 images and the temporary file
    monkeypatch.undo()
    assert extract_subimages.main(argv + ["--output", str(tmp_path / "out")]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == expected  # no duplicates, no temporary file
    for name in expected:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


def test_extraction_in_processes_matches_one_process(tmp_path: Path) -> None:
    for i in range(4):
        write_image(_image(24, 20, i), str(tmp_path / "hr" / "sub" / f"{i}.png"))
    argv = ["--input", str(tmp_path / "hr"), "--crop-size", "8", "--step", "6"]
    assert extract_subimages.main(argv + ["--output", str(tmp_path / "one"), "--workers", "1"]) == 0
    assert extract_subimages.main(argv + ["--output", str(tmp_path / "two"), "--workers", "2"]) == 0
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    assert one == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.png"))
    assert len(one) == 4 * 4 * 3 and all(p.parent.name == "sub" for p in one)


def test_scripts_run_as_commands(tmp_path: Path) -> None:
    """The thin wrappers in scripts/: --help, and one user mistake as one line with exit code 2."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    for script in ("extract_subimages.py", "generate_lr.py", "create_lmdb.py", "bench_data.py"):
        done = subprocess.run([sys.executable, str(repo / "scripts" / script), "--help"], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr
    done = subprocess.run([sys.executable, str(repo / "scripts" / "generate_lr.py"), "--input", str(tmp_path / "no"),
                           "--output", str(tmp_path / "lr"), "--scale", "4"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: --input: folder '{tmp_path / 'no'}' does not exist"]
