"""Reading and writing images with torchvision.io (PNG/JPEG), as float RGB tensors in [0, 1]."""
from __future__ import annotations

import os
import struct
from typing import Dict, List, Tuple

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
    """``{'sub/0001': 'sub/0001.png'}``: the key pairs GT and LQ files regardless of extension.

    Two files with one name (``x.png`` and ``x.jpg``) are an error: silently keeping one would drop data.
    """
    found: Dict[str, str] = {}
    for rel in list_images(folder):
        stem = os.path.splitext(rel)[0]
        if stem in found:
            raise UserError(f"{os.path.join(folder, rel)}: two images named '{stem}' ({found[stem]} and {rel}); "
                            "keep one")
        found[stem] = rel
    return found


def read_image(path: str) -> torch.Tensor:
    """float32 (3, H, W) RGB in [0, 1]; a file that cannot be decoded is a user error naming it."""
    return to_float(decode_file(path))


def decode_file(path: str) -> torch.Tensor:
    """The decoded integer image (uint8, or uint16 for 16-bit PNG), RGB (3, H, W): crop it before
    :func:`to_float`, which then converts only the pixels kept."""
    try:
        data = read_file(path)
        return decode_image(data, mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot read image ({reason})") from None


def to_float(img: torch.Tensor) -> torch.Tensor:
    """Integer image -> float32 in [0, 1], scaled by its own range (255, or 65535 for 16-bit PNG)."""
    if img.is_floating_point():
        return img
    return img.to(torch.float32).div_(float(torch.iinfo(img.dtype).max))


def write_image(img: torch.Tensor, path: str) -> None:
    """Write a uint8 (C, H, W) tensor as PNG, creating the folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_png(img.cpu(), path)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(path: str) -> Tuple[int, int]:
    """(width, height) from the PNG/JPEG header, without decoding: checks every file of a large set fast."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(26)
            if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return width, height
            if head.startswith(b"\xff\xd8"):
                return _jpeg_size(fh, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read image ({exc.strerror or exc})") from None
    except struct.error:
        pass
    raise UserError(f"{path}: cannot read image (not a valid PNG or JPEG file)")


def _jpeg_size(fh, path: str) -> Tuple[int, int]:
    fh.seek(2)
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            break
        while marker[1] == 0xFF:  # fill bytes
            marker = marker[1:] + fh.read(1)
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            break
        (length,) = struct.unpack(">H", length_bytes)
        if marker[1] in _JPEG_SOF:
            data = fh.read(5)
            if len(data) < 5:
                break
            height, width = struct.unpack(">HH", data[1:5])
            return width, height
        fh.seek(length - 2, os.SEEK_CUR)
    raise UserError(f"{path}: cannot read image (JPEG without a readable frame header; truncated?)")
