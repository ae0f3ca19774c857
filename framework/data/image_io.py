"""Reading and writing images with torchvision.io (PNG/JPEG), as float RGB tensors in [0, 1]."""
from __future__ import annotations

import os
from typing import Dict, List

import torch
from torchvision.io import ImageReadMode, decode_image, read_file, write_png

from ..errors import UserError

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg")


def list_images(folder: str) -> List[str]:
    """Image files below ``folder`` as sorted relative paths (sub-folders included)."""
    found = []
    for root, _dirs, files in os.walk(folder):
        for fname in files:
            if fname.lower().endswith(IMG_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(root, fname), folder))
    return sorted(found)


def images_by_stem(folder: str) -> Dict[str, str]:
    """``{'sub/0001': 'sub/0001.png'}``: the key pairs GT and LQ files regardless of extension."""
    return {os.path.splitext(rel)[0]: rel for rel in list_images(folder)}


def read_image(path: str) -> torch.Tensor:
    """float32 (3, H, W) RGB in [0, 1]; a file that cannot be decoded is a user error naming it."""
    try:
        data = read_file(path)
        img = decode_image(data, mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot read image ({reason})") from None
    return img.float().div_(255.0)


def write_image(img: torch.Tensor, path: str) -> None:
    """Write a uint8 (C, H, W) tensor as PNG, creating the folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_png(img.cpu(), path)
