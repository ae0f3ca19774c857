"""Shared helpers for the tests: tiny option files, tiny image folders, tiny generated data sets.

The plain helper functions are reached through the ``helpers`` fixture (``helpers.tiny_options(...)``), so the
tests work whether or not ``tests/`` is a package.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

import pytest
import torch
import yaml
from torchcodec.encoders import JpegEncoder

from framework.data.image_io import write_image

from .tinyrun import make_data, tiny_options

# torchvision's deprecated image decoding and encoding fail the tests (pytest.ini) and every train.py / test.py /
# script the tests start (inherited by child processes): the example run included.
_TORCHVISION_IMAGE_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"
os.environ["PYTHONWARNINGS"] = ",".join(
    filter(None, [os.environ.get("PYTHONWARNINGS", ""), f"error:{_TORCHVISION_IMAGE_DEPRECATION}:DeprecationWarning"]))

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_YML = REPO_ROOT / "options" / "train" / "example.yml"


def example_raw() -> Dict[str, Any]:
    """The raw YAML mapping of options/train/example.yml (a fresh deep copy each call)."""
    with open(EXAMPLE_YML, encoding="utf-8") as fh:
        return copy.deepcopy(yaml.safe_load(fh))


def deep_update(base: Dict[str, Any], changes: Mapping[str, Any]) -> Dict[str, Any]:
    """Recursively merge ``changes`` into ``base`` (in place); a value of ``...`` deletes the key."""
    for key, value in changes.items():
        if value is ...:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def write_yaml(path: os.PathLike, raw: Mapping[str, Any]) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(raw), sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.fixture
def options_file(tmp_path: Path) -> Callable[..., str]:
    """``options_file(raw=None, filename='opt.yml', **changes)`` -> path of a YAML options file in tmp_path.

    Without ``raw``, starts from the tiny configuration (:func:`tests.tinyrun.tiny_options`, data under
    tmp_path/data).
    """

    def _write(raw: Optional[Mapping[str, Any]] = None, filename: str = "opt.yml", **changes: Any) -> str:
        base = copy.deepcopy(dict(raw)) if raw is not None else tiny_options(tmp_path / "data")
        deep_update(base, changes)
        return write_yaml(tmp_path / filename, base)

    return _write


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory holding the tiny data set (``data/``), the cwd during the test; the trainer's
    CPU thread count is restored afterwards."""
    make_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------- images


def random_image(h: int, w: int, seed: int) -> torch.Tensor:
    """A uint8 (3, H, W) image of random pixels (unique patches, so crops can be located exactly)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)


def nearest_upsample(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Each pixel becomes a ``scale`` x ``scale`` block: LQ is then exactly the nearest downsample of GT."""
    return img.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def save_image(img: torch.Tensor, path: os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        JpegEncoder(img).to_file(str(path), quality=95)
    else:
        write_image(img, str(path))


def make_paired_folders(root: os.PathLike, names, scale: int = 2, lq_size=(12, 10), lq_ext: str = ".png",
                        lq_tmpl: str = "{}", seed: int = 0) -> Dict[str, Dict[str, torch.Tensor]]:
    """Write GT/LQ folders under ``root`` (``root/gt``, ``root/lq``); GT = nearest upsample of random LQ.

    Returns ``{name: {'gt': uint8, 'lq': uint8}}`` of what was written.
    """
    root = Path(root)
    written = {}
    for i, name in enumerate(names):
        lq = random_image(lq_size[0], lq_size[1], seed + i)
        gt = nearest_upsample(lq, scale)
        save_image(gt, root / "gt" / f"{name}.png")
        save_image(lq, root / "lq" / f"{lq_tmpl.format(name)}{lq_ext}")
        written[name] = {"gt": gt, "lq": lq}
    return written


@pytest.fixture(scope="session")
def example_data(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """A tiny synthetic data set (4 train + 2 val, 32x32 HR, x2), generated once per session. Read-only."""
    from framework.data.example_data import generate_example_data

    root = tmp_path_factory.mktemp("example_data") / "example"
    return generate_example_data(root, num_train=4, num_val=2, size=32, scale=2)


@pytest.fixture(scope="session")
def helpers() -> SimpleNamespace:
    """The plain helper functions and constants of this module."""
    return SimpleNamespace(REPO_ROOT=REPO_ROOT, EXAMPLE_YML=EXAMPLE_YML, example_raw=example_raw,
                           deep_update=deep_update, tiny_options=tiny_options, write_yaml=write_yaml,
                           random_image=random_image, nearest_upsample=nearest_upsample, save_image=save_image,
                           make_paired_folders=make_paired_folders)
