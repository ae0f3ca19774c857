"""Reading and writing images with torchvision.io (PNG/JPEG), as float RGB tensors in [0, 1]; 16-bit and
alpha PNGs are written by :func:`encode_png`, which torchvision cannot."""
from __future__ import annotations

import os
import struct
import zlib
from typing import Dict, List, Literal, Tuple

import numpy as np
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


def decode_file(path: str, channels: Literal["rgb", "stored"] = "rgb") -> torch.Tensor:
    """The decoded integer image (uint8, or uint16 for 16-bit PNG), (C, H, W): crop it before :func:`to_float`,
    which then converts only the pixels kept.

    ``channels="rgb"``: always RGB (training and test sets). ``"stored"``: the channels the file holds, gray (1),
    gray + alpha (2), RGB (3) or RGBA (4), with a palette PNG as RGB(A) and a CMYK JPEG as RGB, and the EXIF
    orientation applied, as a viewer shows it (inference on the user's images).
    """
    try:
        data = read_file(path)
        if channels == "rgb":
            return decode_image(data, mode=ImageReadMode.RGB)
        img = decode_image(data, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=True)
        raw = data.numpy().tobytes()
        if raw.startswith(_PNG_SIGNATURE) and raw[25:26] == b"\x03":  # colour type 3: UNCHANGED gives indices
            img = decode_image(data, mode=ImageReadMode.RGB, apply_exif_orientation=True)
            if b"tRNS" in raw[:raw.find(b"IDAT")]:  # transparency (RGB_ALPHA is wrong without it)
                alpha = decode_image(data, mode=ImageReadMode.RGB_ALPHA, apply_exif_orientation=True)[3:]
                img = img if bool((alpha == 255).all()) else torch.cat([img, alpha])
        elif not raw.startswith(_PNG_SIGNATURE) and img.shape[0] not in (1, 3):  # CMYK JPEG
            img = decode_image(data, mode=ImageReadMode.RGB, apply_exif_orientation=True)
        return img
    except (RuntimeError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot read image ({reason})") from None


def to_float(img: torch.Tensor) -> torch.Tensor:
    """Integer image -> float32 in [0, 1], scaled by its own range (255, or 65535 for 16-bit PNG)."""
    if img.is_floating_point():
        return img
    return img.to(torch.float32).div_(float(torch.iinfo(img.dtype).max))


def to_integer(img: torch.Tensor, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """The inverse of :func:`to_float`: float in [0, 1] (clamped) -> rounded uint8 or uint16."""
    top = float(torch.iinfo(dtype).max)
    return img.detach().float().clamp(0.0, 1.0).mul(top).round_().to(dtype)


def write_image(img: torch.Tensor, path: str) -> None:
    """Write a uint8 or uint16 (C, H, W) tensor, C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA), as PNG
    of that bit depth and colour type, creating the folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    img = img.cpu()
    if img.dtype == torch.uint8 and img.shape[0] in (1, 3):
        write_png(img, path)
        return
    with open(path, "wb") as fh:
        fh.write(encode_png(img))


_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> IHDR colour type (gray, gray+alpha, RGB, RGBA)


def encode_png(img: torch.Tensor) -> bytes:
    """PNG bytes of a uint8 or uint16 (C, H, W) image with 1 to 4 channels (torchvision writes 8-bit gray and
    RGB only). Each row uses the 'Up' filter, which suits photographs; zlib level 6."""
    if img.dim() != 3 or img.shape[0] not in _PNG_COLOUR_TYPES or img.dtype not in (torch.uint8, torch.uint16):
        raise ValueError(f"encode_png: expected a uint8 or uint16 (C, H, W) tensor with 1-4 channels, got "
                         f"{img.dtype} {tuple(img.shape)}")
    channels, height, width = img.shape
    pixels = img.permute(1, 2, 0).contiguous().numpy()
    if img.dtype == torch.uint16:
        pixels = pixels.astype(">u2")  # PNG samples are big-endian
    rows = pixels.reshape(height, -1).view(np.uint8)
    up = rows.copy()
    up[1:] -= rows[:-1]  # filter type 2 ('Up'): the byte minus the byte above, modulo 256
    filtered = np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1)
    depth = 16 if img.dtype == torch.uint16 else 8
    header = struct.pack(">IIBBBBB", width, height, depth, _PNG_COLOUR_TYPES[channels], 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (_PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6))
            + chunk(b"IEND", b""))


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
