"""The synthetic example data set: deterministic, complete-or-absent, and worth super-resolving."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from framework.cli import run_main
from framework.data import example_data
from framework.data.degradations import bicubic_downsample, bicubic_upsample
from framework.data.example_data import MARKER_NAME, ExampleDataError, generate_example_data
from framework.data.image_io import decode_file
from framework.errors import UserError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

SMALL = dict(scale=2, num_train=4, num_val=2, size=32, seed=0)


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _psnr(a: torch.Tensor, b: torch.Tensor, crop: int = 2) -> float:
    a = a.double()[..., crop:-crop, crop:-crop]
    b = b.double()[..., crop:-crop, crop:-crop]
    return float(10 * torch.log10(255.0 ** 2 / ((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return generate_example_data(tmp_path_factory.mktemp("ex") / "example", **SMALL)


# ---------------------------------------------------------------------------------------------- degradations


@pytest.mark.parametrize("shape", [(3, 12, 20), (2, 3, 12, 20)])
@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_downsample_shape_and_range(shape: tuple, scale: int) -> None:
    img = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    img[..., :4, :4] = 1.0  # hard edges make bicubic overshoot, which must be clamped away
    img[..., 4:8, :4] = 0.0
    out = bicubic_downsample(img, scale)
    assert out.shape == (*shape[:-2], shape[-2] // scale, shape[-1] // scale)
    assert out.dtype == img.dtype
    assert out.min() >= 0 and out.max() <= 1
    up = bicubic_upsample(out, scale)
    assert up.shape == img.shape
    assert up.min() >= 0 and up.max() <= 1


def test_bicubic_downsample_keeps_flat_images_flat() -> None:
    img = torch.full((3, 16, 16), 0.25)
    assert torch.allclose(bicubic_downsample(img, 2), torch.full((3, 8, 8), 0.25), atol=1e-6)


def test_bicubic_downsample_rejects_non_divisible_size() -> None:
    with pytest.raises(ValueError, match="not divisible by scale 2"):
        bicubic_downsample(torch.rand(3, 17, 16), 2)
    with pytest.raises(ValueError, match="not divisible by scale 4"):
        bicubic_downsample(torch.rand(1, 3, 16, 18), 4)


def test_bicubic_downsample_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        bicubic_downsample(torch.zeros(3, 8, 8, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="shape"):
        bicubic_downsample(torch.rand(8, 8), 2)
    with pytest.raises(ValueError, match="positive integer"):
        bicubic_downsample(torch.rand(3, 8, 8), 0)


# ---------------------------------------------------------------------------------------------- generation


def test_layout_names_and_sizes(small_set: dict) -> None:
    root = small_set["root"]
    assert small_set["generated"] is True
    assert (small_set["num_train"], small_set["num_val"]) == (4, 2)
    for split, count in (("train", 4), ("val", 2)):
        hr_dir, lr_dir = small_set[f"{split}_hr"], small_set[f"{split}_lr"]
        assert hr_dir == root / split / "HR" and lr_dir == root / split / "LR_x2"
        names = sorted(p.name for p in hr_dir.iterdir())
        assert names == [f"{i:04d}.png" for i in range(count)]
        assert sorted(p.name for p in lr_dir.iterdir()) == names
        for name in names:
            hr, lr = decode_file(str(hr_dir / name)), decode_file(str(lr_dir / name))
            assert hr.dtype == torch.uint8 and hr.shape == (3, 32, 32)
            assert lr.shape == (3, 16, 16)
    marker = json.loads((root / MARKER_NAME).read_text())
    assert marker["params"] == SMALL
    assert not list(root.parent.glob(".*partial*")), "the temporary folder must be gone"


def test_lr_is_the_bicubic_downsample_of_hr(small_set: dict) -> None:
    hr = decode_file(str(small_set["train_hr"] / "0000.png")).float() / 255
    lr = decode_file(str(small_set["train_lr"] / "0000.png")).float()
    # LR is made from the unquantized HR, so allow a rounding step either side.
    assert (bicubic_downsample(hr, 2) * 255 - lr).abs().max() <= 1.5


def test_deterministic(tmp_path: Path, small_set: dict) -> None:
    again = generate_example_data(tmp_path / "again", **SMALL)
    first, second = _files(small_set["root"]), _files(again["root"])
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)


def test_seed_and_split_change_the_images(tmp_path: Path, small_set: dict) -> None:
    other = generate_example_data(tmp_path / "seed1", **{**SMALL, "seed": 1})
    assert (small_set["train_hr"] / "0000.png").read_bytes() != (other["train_hr"] / "0000.png").read_bytes()
    train = {p.read_bytes() for p in small_set["train_hr"].iterdir()}
    assert not any(p.read_bytes() in train for p in small_set["val_hr"].iterdir())


def test_images_are_not_trivial(small_set: dict) -> None:
    for split in ("train", "val"):
        for path in sorted(small_set[f"{split}_hr"].iterdir()):
            hr = decode_file(str(path))
            lr = decode_file(str(small_set[f"{split}_lr"] / path.name))
            assert hr.float().std() > 20, f"{path} is nearly flat"
            assert hr.float().std(dim=(1, 2)).mean() > 10, f"{path} looks washed out"
            up = (bicubic_upsample(lr.float() / 255, 2) * 255).round()
            psnr = _psnr(hr, up)
            assert 20 < psnr < 40, f"{path}: bicubic PSNR {psnr:.1f} dB leaves nothing (or everything) to learn"


def test_fast_path_does_not_rewrite(small_set: dict) -> None:
    root = small_set["root"]
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    again = generate_example_data(root, **SMALL)
    assert again["generated"] is False
    assert again["train_hr"] == small_set["train_hr"]
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


@pytest.mark.parametrize("change", [{"seed": 1}, {"num_train": 5}, {"size": 48}, {"scale": 4}])
def test_parameter_mismatch_raises(small_set: dict, change: dict) -> None:
    before = _files(small_set["root"])
    with pytest.raises(ValueError, match="different parameters"):
        generate_example_data(small_set["root"], **{**SMALL, **change})
    assert _files(small_set["root"]) == before


def test_foreign_folder_is_refused_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    (root / "train").mkdir(parents=True)
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a complete example set") as info:
        generate_example_data(root, **SMALL)
    assert isinstance(info.value, UserError)
    assert (root / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_empty_folder_is_filled(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    assert generate_example_data(root, **SMALL)["generated"] is True
    assert (root / MARKER_NAME).is_file()


def test_interrupted_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_write_image(tensor: torch.Tensor, filename: str, *args: object, **kwargs: object) -> None:
        calls.append(filename)
        if len(calls) > 3:
            raise KeyboardInterrupt
        Path(filename).write_bytes(b"partial")

    monkeypatch.setattr(example_data, "write_image", failing_write_image)
    with pytest.raises(KeyboardInterrupt):
        generate_example_data(tmp_path / "example", **SMALL)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert generate_example_data(tmp_path / "example", **SMALL)["generated"] is True


def test_missing_file_in_marked_set_raises(tmp_path: Path) -> None:
    info = generate_example_data(tmp_path / "example", **SMALL)
    (info["val_lr"] / "0001.png").unlink()
    with pytest.raises(ValueError, match="missing"):
        generate_example_data(tmp_path / "example", **SMALL)


@pytest.mark.parametrize("bad", [{"size": 33}, {"scale": 0}, {"num_train": 0}, {"seed": -1}, {"size": 4}])
def test_bad_parameters_raise(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ExampleDataError):
        generate_example_data(tmp_path / "example", **{**SMALL, **bad})
    assert not (tmp_path / "example").exists()


def test_cli_runs_from_a_checkout(tmp_path: Path) -> None:
    # One real subprocess (importing torch costs seconds), from elsewhere, to prove the script finds the package.
    args = ["--root", str(tmp_path / "cli"), "--num-train", "2", "--num-val", "1", "--size", "32"]
    first = subprocess.run([sys.executable, str(REPO / "scripts" / "make_example_data.py"), *args],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("wrote 2 train + 1 val")


def test_cli_fast_path_and_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from framework.tools import make_example_data as cli

    args = ["--root", str(tmp_path / "cli"), "--num-train", "2", "--num-val", "1", "--size", "32"]
    assert cli.main(args) == 0
    assert cli.main(args) == 0
    assert "already holds 2 train + 1 val" in capsys.readouterr().out
    assert run_main(cli.main, args + ["--seed", "5"]) == 2  # as scripts/make_example_data.py runs it
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "different parameters" in err


def test_degraded_val_for_the_realesrgan_examples(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--scale 4 (the Real-ESRGAN examples) also writes val/LR_x4_degraded, versioned in the marker; the x2
    default set and its marker stay as they were (test_layout_names_and_sizes)."""
    from framework.tools import make_example_data as cli

    args = ["--root", str(tmp_path / "x4"), "--scale", "4", "--num-train", "1", "--num-val", "2", "--size", "32"]
    assert cli.main(args) == 0
    assert "LR_x4 and degraded val LR" in capsys.readouterr().out
    root = tmp_path / "x4"
    degraded = root / "val" / "LR_x4_degraded"
    assert sorted(p.name for p in degraded.iterdir()) == ["0000.png", "0001.png"]
    for name in ("0000.png", "0001.png"):
        lq, bicubic = decode_file(str(degraded / name)), decode_file(str(root / "val" / "LR_x4" / name))
        assert lq.dtype == torch.uint8 and lq.shape == bicubic.shape == (3, 8, 8)
        assert not torch.equal(lq, bicubic)
    assert json.loads((root / MARKER_NAME).read_text())["params"]["degraded_val"] == 1
    assert cli.main(args) == 0  # found complete, nothing rewritten
    assert "nothing to do" in capsys.readouterr().out
    assert run_main(cli.main, [*args, "--no-degraded-val"]) == 2  # another set than the one there
    assert "different parameters" in capsys.readouterr().err
    (degraded / "0001.png").unlink()
    with pytest.raises(ExampleDataError, match="LR_x4_degraded/0001.png is missing"):
        generate_example_data(root, scale=4, num_train=1, num_val=2, size=32, degraded_val=True)
