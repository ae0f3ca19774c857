"""A deterministic synthetic SR data set, so the default example run needs no download.

The images are made of what bicubic upsampling blurs and a small network can learn to restore: sharp-edged
shapes, thin and thick lines at many angles, stripes and checkerboards near (but mostly below) the LR Nyquist
frequency and blocky text, on smooth gradients. Everything is drawn with vectorized torch ops from a
``torch.Generator``, so a given seed gives byte-identical PNGs on a given torch version.

Layout written under ``root``::

    train/HR/0000.png ...   train/LR_x{scale}/0000.png ...
    val/HR/0000.png ...     val/LR_x{scale}/0000.png ...
    val/LR_x{scale}_degraded/0000.png ...   (with ``degraded_val``: the Real-ESRGAN examples' validation inputs)
    .complete.json          (parameters; written last, its presence means the set is complete)
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Union

import torch

from ..errors import UserError
from .degradations import bicubic_downsample
from .image_io import write_image

__all__ = ["ExampleDataError", "generate_example_data", "render_image", "MARKER_NAME"]

MARKER_NAME = ".complete.json"
_GENERATOR = "framework.data.example_data"
# Bump when the drawing code changes what a seed produces, so old folders are not taken for the new set.
# 2: LR by MATLAB's imresize (symmetric padding at the borders), the HR images of version 1.
_VERSION = 2
_SEED_VERSION = 1  # the HR images' seeds: unchanged since version 1
# The degraded validation inputs (``degraded_val``), versioned on their own so the other sets stay valid: bump
# when the Real-ESRGAN pipeline or its default keys change what they make.
_DEGRADED_VERSION = 1
DEGRADED_DIR = "LR_x{scale}_degraded"


class ExampleDataError(UserError, ValueError):
    """The example-data folder or parameters are unusable; a ValueError that entry points print as a user error."""


# --------------------------------------------------------------------------------------------------------------
# Random helpers: every draw goes through the one generator, so the draw order alone fixes the image.


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _log_uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return math.exp(_uniform(g, math.log(lo), math.log(hi)))


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """An integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _chance(g: torch.Generator, p: float) -> bool:
    return float(torch.rand((), generator=g)) < p


def _colour(g: torch.Generator) -> torch.Tensor:
    return torch.rand(3, 1, 1, generator=g)


def _contrasting_colour(g: torch.Generator, other: torch.Tensor, min_dist: float = 0.35) -> torch.Tensor:
    """A colour visibly different from ``other``, so patterns never vanish into a near-flat patch."""
    for _ in range(8):
        c = _colour(g)
        if float((c - other).abs().max()) >= min_dist:
            return c
    return 1.0 - other


# --------------------------------------------------------------------------------------------------------------
# Geometry: signed distances in pixels (negative inside); a 1-px ramp across the edge anti-aliases it.


class _Canvas:
    def __init__(self, size: int, scale: int) -> None:
        coords = torch.arange(size, dtype=torch.float32) + 0.5
        self.y, self.x = torch.meshgrid(coords, coords, indexing="ij")
        self.size = size
        self.scale = scale

    def local(self, cx: float, cy: float, angle: float) -> tuple:
        """Coordinates in a frame centred at (cx, cy) and rotated by ``angle``."""
        dx, dy = self.x - cx, self.y - cy
        c, s = math.cos(angle), math.sin(angle)
        return dx * c + dy * s, -dx * s + dy * c


def _coverage(dist: torch.Tensor) -> torch.Tensor:
    return (0.5 - dist).clamp_(0.0, 1.0)


def _periodic_dist(u: torch.Tensor, period: float, phase: float, duty: float) -> torch.Tensor:
    """Signed distance to bands of width ``duty * period`` repeating every ``period`` pixels along ``u``."""
    t = torch.frac(u / period + phase + 1000.0)
    return (t - 0.5).abs() * period - 0.5 * duty * period


def _random_center(g: torch.Generator, cv: _Canvas, margin: float = 0.1) -> tuple:
    lo, hi = -margin * cv.size, (1 + margin) * cv.size
    return _uniform(g, lo, hi), _uniform(g, lo, hi)


def _circle(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    cx, cy = _random_center(g, cv)
    r = _log_uniform(g, 0.03, 0.3) * cv.size
    if _chance(g, 0.5):
        return ((cv.x - cx) ** 2 + (cv.y - cy) ** 2).sqrt() - r
    # Ellipse: scaled distance, exact enough within a pixel of the edge.
    a, b = r, r * _uniform(g, 0.3, 1.0)
    u, v = cv.local(cx, cy, _uniform(g, 0, math.pi))
    return (((u / a) ** 2 + (v / b) ** 2).sqrt() - 1.0) * b


def _ring(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    cx, cy = _random_center(g, cv)
    r = _log_uniform(g, 0.05, 0.35) * cv.size
    width = _log_uniform(g, 0.8, 6.0)
    return (((cv.x - cx) ** 2 + (cv.y - cy) ** 2).sqrt() - r).abs() - width / 2


def _rect(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    cx, cy = _random_center(g, cv)
    a = _log_uniform(g, 0.03, 0.3) * cv.size
    b = _log_uniform(g, 0.03, 0.3) * cv.size
    angle = 0.0 if _chance(g, 0.4) else _uniform(g, 0, math.pi)
    u, v = cv.local(cx, cy, angle)
    return torch.maximum(u.abs() - a, v.abs() - b)


def _polygon(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    """A convex polygon (3-7 corners on an ellipse), as the max of its edges' half-plane distances."""
    cx, cy = _random_center(g, cv)
    n = _randint(g, 3, 7)
    r = _log_uniform(g, 0.05, 0.3) * cv.size
    squash = _uniform(g, 0.5, 1.0)
    rot = _uniform(g, 0, 2 * math.pi)
    gaps = torch.rand(n, generator=g) + 0.4  # bounded away from 0: no degenerate, near-zero-length edges
    angles = (torch.cumsum(gaps, 0) / gaps.sum() * 2 * math.pi).tolist()
    pts = []
    for t in angles:
        px, py = r * math.cos(t), r * squash * math.sin(t)
        pts.append((cx + px * math.cos(rot) - py * math.sin(rot), cy + px * math.sin(rot) + py * math.cos(rot)))
    mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    dists = []
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % n]
        ex, ey = x1 - x0, y1 - y0
        norm = math.hypot(ex, ey)
        sign = -1.0 if (ex * (my - y0) - ey * (mx - x0)) > 0 else 1.0  # so the centroid is inside
        dists.append(sign * (ex * (cv.y - y0) - ey * (cv.x - x0)) / norm)
    return torch.stack(dists).amax(0)


def _line(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    """A segment with round caps; thin ones (about 1 px) are what bicubic upsampling smears most."""
    x0, y0 = _random_center(g, cv, 0.0)
    angle = _uniform(g, 0, math.pi)
    length = _log_uniform(g, 0.15, 1.2) * cv.size
    x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
    width = _uniform(g, 0.8, 1.8) if _chance(g, 0.5) else _log_uniform(g, 2.0, 9.0)
    ex, ey = x1 - x0, y1 - y0
    px, py = cv.x - x0, cv.y - y0
    t = ((px * ex + py * ey) / (ex * ex + ey * ey)).clamp_(0.0, 1.0)
    return ((px - t * ex) ** 2 + (py - t * ey) ** 2).sqrt() - width / 2


_SHAPES: List[Callable[[torch.Generator, _Canvas], torch.Tensor]] = [_circle, _rect, _polygon]


def _random_region(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    """The coverage of a largish shape that a texture fills."""
    shape = _SHAPES[_randint(g, 0, len(_SHAPES) - 1)]
    dist = shape(g, cv)
    return _coverage(dist - _uniform(g, 0.0, 0.08) * cv.size)  # grown a little: textures need room


def _period(g: torch.Generator, cv: _Canvas) -> float:
    # LR Nyquist is a period of 2*scale HR pixels: mostly stay below it, a little above is allowed.
    return _log_uniform(g, 1.8 * cv.scale, 10.0 * cv.scale)


def _stripes(g: torch.Generator, cv: _Canvas) -> tuple:
    u, _ = cv.local(0.0, 0.0, _uniform(g, 0, math.pi))
    band = _coverage(_periodic_dist(u, _period(g, cv), _uniform(g, 0, 1), _uniform(g, 0.3, 0.7)))
    return band, _random_region(g, cv)


def _checker(g: torch.Generator, cv: _Canvas) -> tuple:
    angle = 0.0 if _chance(g, 0.5) else _uniform(g, 0, math.pi / 2)
    u, v = cv.local(0.0, 0.0, angle)
    period = 2 * _period(g, cv)  # two squares per period
    su = 2 * _coverage(_periodic_dist(u, period, _uniform(g, 0, 1), 0.5)) - 1
    sv = 2 * _coverage(_periodic_dist(v, period, _uniform(g, 0, 1), 0.5)) - 1
    return (su * sv + 1) / 2, _random_region(g, cv)


def _grating(g: torch.Generator, cv: _Canvas) -> tuple:
    """A smooth sinusoid: low-frequency content that bicubic handles well, as in real images."""
    u, _ = cv.local(0.0, 0.0, _uniform(g, 0, math.pi))
    period = _log_uniform(g, 4.0 * cv.scale, 20.0 * cv.scale)
    return 0.5 + 0.5 * torch.sin(u * (2 * math.pi / period) + _uniform(g, 0, 2 * math.pi)), _random_region(g, cv)


def _text(g: torch.Generator, cv: _Canvas) -> tuple:
    """Lines of random 3x5-cell "glyphs" on whole-pixel cells, optionally on a label box."""
    cell = _randint(g, max(1, round(0.75 * cv.scale)), 2 * cv.scale)
    n_lines, n_chars = _randint(g, 1, 4), _randint(g, 3, 12)
    glyphs = torch.rand(n_lines, n_chars, 5, 3, generator=g) < 0.5
    bits = torch.zeros(n_lines, 7, n_chars, 4, dtype=torch.bool)  # a blank column and two blank rows between
    bits[:, 1:6, :, :3] = glyphs.permute(0, 2, 1, 3)
    bits = bits.reshape(n_lines * 7, n_chars * 4)
    if _chance(g, 0.3):
        bits = bits.t()  # vertical text
    rows, cols = bits.shape
    x0 = _randint(g, -cols * cell // 2, cv.size - cols * cell // 2)
    y0 = _randint(g, -rows * cell // 2, cv.size - rows * cell // 2)
    iy = torch.div(cv.y.long() - y0, cell, rounding_mode="floor")
    ix = torch.div(cv.x.long() - x0, cell, rounding_mode="floor")
    inside = (iy >= 0) & (iy < rows) & (ix >= 0) & (ix < cols)
    ink = bits[iy.clamp(0, rows - 1), ix.clamp(0, cols - 1)] & inside
    return ink.float(), inside.float()


_TEXTURES = [_stripes, _checker, _grating, _text]


# --------------------------------------------------------------------------------------------------------------
# Composition.


def _background(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    c0, c1 = _colour(g), _colour(g)
    kind = _randint(g, 0, 2)
    if kind == 0:  # linear gradient
        u, _ = cv.local(cv.size / 2, cv.size / 2, _uniform(g, 0, 2 * math.pi))
        t = (u / (cv.size * math.sqrt(0.5)) + 0.5).clamp(0, 1)
    elif kind == 1:  # radial gradient
        cx, cy = _random_center(g, cv, 0.0)
        t = (((cv.x - cx) ** 2 + (cv.y - cy) ** 2).sqrt() / (cv.size * _uniform(g, 0.5, 1.2))).clamp(0, 1)
    else:  # four corner colours, bilinear
        c2, c3 = _colour(g), _colour(g)
        tx, ty = cv.x / cv.size, cv.y / cv.size
        top = c0 * (1 - tx) + c1 * tx
        bottom = c2 * (1 - tx) + c3 * tx
        return top * (1 - ty) + bottom * ty
    return c0 * (1 - t) + c1 * t


def _fill(g: torch.Generator, cv: _Canvas) -> torch.Tensor:
    """A flat colour, sometimes a gradient, to paint a shape with."""
    c0 = _colour(g)
    if _chance(g, 0.75):
        return c0.expand(3, cv.size, cv.size)
    c1 = _colour(g)
    u, _ = cv.local(_uniform(g, 0, cv.size), _uniform(g, 0, cv.size), _uniform(g, 0, 2 * math.pi))
    t = (u / (_uniform(g, 0.3, 1.0) * cv.size) + 0.5).clamp(0, 1)
    return c0 * (1 - t) + c1 * t


def _blob(g: torch.Generator, cv: _Canvas) -> tuple:
    """A soft Gaussian blob: smooth shading between the hard edges."""
    cx, cy = _random_center(g, cv)
    sigma = _log_uniform(g, 0.05, 0.3) * cv.size
    alpha = torch.exp(-((cv.x - cx) ** 2 + (cv.y - cy) ** 2) / (2 * sigma ** 2)) * _uniform(g, 0.4, 0.9)
    return _colour(g).expand(3, cv.size, cv.size), alpha


def _element(g: torch.Generator, cv: _Canvas) -> tuple:
    """One random layer: (colour field (3,H,W), alpha (H,W))."""
    # circle, rect, polygon, ring, line, texture, blob
    weights = torch.tensor([2.0, 2.0, 2.0, 1.0, 3.5, 3.5, 0.5])
    kind = int(torch.multinomial(weights, 1, generator=g))
    if kind < 3:
        return _fill(g, cv), _coverage(_SHAPES[kind](g, cv))
    if kind == 3:
        return _fill(g, cv), _coverage(_ring(g, cv))
    if kind == 4:
        return _colour(g).expand(3, cv.size, cv.size), _coverage(_line(g, cv))
    if kind == 5:
        texture = _TEXTURES[int(torch.multinomial(torch.tensor([3.0, 2.0, 1.0, 3.0]), 1, generator=g))]
        pattern, region = texture(g, cv)
        if texture is _text and _chance(g, 0.5):
            # Ink only: the page under the text is whatever was painted before.
            return _colour(g).expand(3, cv.size, cv.size), pattern * region
        c0 = _colour(g)
        c1 = _contrasting_colour(g, c0)
        return c0 * (1 - pattern) + c1 * pattern, region
    return _blob(g, cv)


def render_image(size: int, scale: int, generator: torch.Generator) -> torch.Tensor:
    """Draw one float RGB image (3, size, size) in [0, 1]; ``scale`` sets the texture frequencies it can hold."""
    cv = _Canvas(size, scale)
    g = generator
    img = _background(g, cv)
    # Scale the number of layers with area so larger images are as busy as the 128-px default.
    n = max(4, round(_randint(g, 12, 22) * (size / 128) ** 2))
    for _ in range(n):
        colour, alpha = _element(g, cv)
        img = img * (1 - alpha) + colour * alpha
    if _chance(g, 0.5):  # mild sensor-like noise on some images
        img = img + torch.randn(img.shape, generator=g) * (_uniform(g, 0.5, 2.0) / 255)
    return img.clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------------------------
# Writing the set.


def _stream_seed(seed: int, split: str) -> int:
    """Independent seeds per split, so val never repeats a train image whatever the seed."""
    digest = hashlib.sha256(f"{_GENERATOR}:{_SEED_VERSION}:{seed}:{split}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _to_uint8(img: torch.Tensor) -> torch.Tensor:
    return (img * 255).round_().clamp_(0, 255).to(torch.uint8)


def _params(scale: int, num_train: int, num_val: int, size: int, seed: int, degraded_val: bool) -> Dict[str, int]:
    params = {"scale": scale, "num_train": num_train, "num_val": num_val, "size": size, "seed": seed}
    if degraded_val:  # absent otherwise: the sets written before it existed stay valid
        params["degraded_val"] = _DEGRADED_VERSION
    return params


def _names(count: int) -> List[str]:
    width = max(4, len(str(count - 1)))
    return [f"{i:0{width}d}.png" for i in range(count)]


def _layout(root: Path, scale: int, num_train: int, num_val: int) -> Dict[str, Any]:
    return {
        "root": root,
        "train_hr": root / "train" / "HR", "train_lr": root / "train" / f"LR_x{scale}",
        "val_hr": root / "val" / "HR", "val_lr": root / "val" / f"LR_x{scale}",
        "val_lr_degraded": root / "val" / DEGRADED_DIR.format(scale=scale),
        "num_train": num_train, "num_val": num_val,
    }


def _validate(scale: int, num_train: int, num_val: int, size: int, seed: int) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for name, value, low in (("scale", scale, 1), ("num_train", num_train, 1), ("num_val", num_val, 0),
                             ("size", size, 8), ("seed", seed, 0)):
        if not is_int(value) or value < low:
            raise ExampleDataError(f"example data: {name} must be an integer >= {low}, got {value!r}")
    if size % scale:
        raise ExampleDataError(f"example data: size {size} is not divisible by scale {scale}; "
                               f"use e.g. size {size - size % scale or scale}")
    if size // scale < 4:
        raise ExampleDataError(f"example data: size {size} is too small for scale {scale} (LR would be "
                               f"{size // scale} px); use size >= {4 * scale}")


def _check_existing(root: Path, params: Dict[str, int]) -> bool:
    """True if ``root`` holds the complete set for ``params``; False if it is absent or an empty folder."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise ExampleDataError(f"example data: {root} exists and is not a folder; pass another root")
    marker = root / MARKER_NAME
    if not marker.is_file():
        if not any(root.iterdir()):
            return False
        raise ExampleDataError(f"example data: {root} exists but is not a complete example set from this "
                               f"generator (no {MARKER_NAME}); pass another root or remove that folder yourself")
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        found = info["params"]
        ok = info["generator"] == _GENERATOR
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExampleDataError(f"example data: {marker} is unreadable, so {root} is not a known example set; "
                               f"pass another root or remove that folder yourself") from exc
    if not ok or info.get("version") != _VERSION or found != params:
        old = ", ".join(f"{k}={v}" for k, v in sorted(dict(found).items())) if isinstance(found, dict) else found
        new = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        raise ExampleDataError(f"example data: {root} holds a set generated with different parameters "
                               f"(version {info.get('version')}: {old}; wanted version {_VERSION}: {new}); "
                               f"pass another root or remove that folder yourself")
    layout = _layout(root, params["scale"], params["num_train"], params["num_val"])
    for split in ("train", "val"):
        kinds = ("hr", "lr", "lr_degraded") if split == "val" and "degraded_val" in params else ("hr", "lr")
        for name in _names(params[f"num_{split}"]) if params[f"num_{split}"] else []:
            for kind in kinds:
                if not (layout[f"{split}_{kind}"] / name).is_file():
                    raise ExampleDataError(f"example data: {root} is marked complete but "
                                           f"{layout[f'{split}_{kind}'] / name} is missing; "
                                           f"remove that folder yourself and generate it again")
    return True


def _write_split(dest: Path, split: str, count: int, scale: int, size: int, seed: int) -> None:
    hr_dir, lr_dir = dest / split / "HR", dest / split / f"LR_x{scale}"
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    stream = torch.Generator().manual_seed(_stream_seed(seed, split))
    for name in _names(count):
        # One sub-seed per image: image i does not change when the count changes.
        image_gen = torch.Generator().manual_seed(int(torch.randint(0, 2 ** 62, (), generator=stream)))
        hr = render_image(size, scale, image_gen)
        lr = bicubic_downsample(hr, scale)
        write_image(_to_uint8(hr), str(hr_dir / name))
        write_image(_to_uint8(lr), str(lr_dir / name))


def _write_degraded_val(dest: Path, scale: int, size: int, seed: int) -> None:
    """The val HR images through the Real-ESRGAN pipeline with its published keys (the defaults, which the
    examples' option files spell out): what ``scripts/degrade_images.py --seed <seed>`` writes for them."""
    from .degraded_set import degrade_image
    from .image_io import decode_file
    from .realesrgan import RealESRGANDataset
    from .synthesis import DegradationOptions, degradation_from

    hr_dir, out_dir = dest / "val" / "HR", dest / "val" / DEGRADED_DIR.format(scale=scale)
    out_dir.mkdir(parents=True)
    kernels = RealESRGANDataset(str(hr_dir), scale, gt_size=size, crop_pad_size=size).kernels
    degradation = degradation_from(DegradationOptions(), scale)
    for path in sorted(hr_dir.iterdir()):
        lq = degrade_image(decode_file(str(path)), degradation, kernels, seed, path.stem)
        write_image(lq, str(out_dir / path.name))


def generate_example_data(root: Union[str, "os.PathLike[str]"], scale: int = 2, num_train: int = 48,
                          num_val: int = 8, size: int = 128, seed: int = 0,
                          degraded_val: bool = False) -> Dict[str, Any]:
    """Write (or find already written) the synthetic HR/LR example set under ``root``.

    Generation goes into a hidden sibling folder that is renamed into place at the end, so an interrupted
    run never leaves a ``root`` that looks complete. A ``root`` holding the same set returns at once; any other
    existing, non-empty ``root`` raises :class:`ExampleDataError` (a ValueError) and is never deleted.
    ``degraded_val`` adds ``val/LR_x{scale}_degraded``: the val HR images through the Real-ESRGAN pipeline.
    Returns the folders (``root``, ``train_hr``, ``train_lr``, ``val_hr``, ``val_lr``, ``val_lr_degraded``),
    the counts and parameters, and ``generated`` (False when the set was already there).
    """
    _validate(scale, num_train, num_val, size, seed)
    root = Path(root)
    params = _params(scale, num_train, num_val, size, seed, degraded_val)
    result = {**_layout(root, scale, num_train, num_val), "scale": scale, "size": size, "seed": seed,
              "degraded_val": degraded_val}
    if _check_existing(root, params):
        return {**result, "generated": False}

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        _write_split(tmp, "train", num_train, scale, size, seed)
        _write_split(tmp, "val", num_val, scale, size, seed)
        if degraded_val:
            _write_degraded_val(tmp, scale, size, seed)
        marker = {"generator": _GENERATOR, "version": _VERSION, "params": params,
                  "torch": torch.__version__,
                  "about": "synthetic SR example set; delete this folder to regenerate it"}
        (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        try:
            if root.is_dir() and not any(root.iterdir()):
                root.rmdir()  # an empty folder the user made: take its place
            os.rename(tmp, root)
        except OSError:
            # Someone else filled root meanwhile (e.g. a parallel run): accept it only if it is our set.
            if _check_existing(root, params):
                shutil.rmtree(tmp, ignore_errors=True)
                return {**result, "generated": False}
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**result, "generated": True}
