"""Reading and writing images (PNG/JPEG) as integer tensors, and float RGB tensors in [0, 1] for training.

Every image the framework reads goes through :func:`decode_bytes`, which decodes with TorchCodec's image
decoders: the successor torchvision names for its own image decoding (deprecated since torchvision 0.29),
as fast as OpenCV and faster than Pillow (``scripts/bench_data.py --only decode``), and exact for 16-bit PNG,
gray + alpha and palettes (docs/data.md compares the decoders). 8-bit gray and RGB PNGs are encoded by
TorchCodec; :func:`encode_png` writes the rest (16-bit, alpha), which it cannot.
"""
from __future__ import annotations

import contextlib
import os
import struct
import zlib
import tempfile
from typing import Any, Dict, List, Literal, Tuple, Union

import numpy as np
import torch

from ..errors import UserError, first_line

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg")


def list_images(folder: str) -> List[str]:
    """Image files below ``folder`` as sorted relative paths (sub-folders included). Fast for large sets: one
    ``scandir`` per folder and plain string joins (100 000 names in a fraction of a second)."""
    found: List[str] = []
    pending = [("", folder)]
    while pending:
        prefix, path = pending.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir():
                    pending.append((prefix + entry.name + os.sep, entry.path))
                elif entry.name.lower().endswith(IMG_EXTENSIONS):
                    found.append(prefix + entry.name)
    found.sort()
    return found


def images_by_stem(folder: str) -> Dict[str, str]:
    """``{'sub/0001': 'sub/0001.png'}``: the key pairs GT and LQ files regardless of extension.

    Two files with one name (``x.png`` and ``x.jpg``) are an error: silently keeping one would drop data.
    """
    found: Dict[str, str] = {}
    for rel in list_images(folder):
        stem = rel[:rel.rindex(".")]
        if stem in found:
            raise UserError(f"{os.path.join(folder, rel)}: two images named '{stem}' ({found[stem]} and {rel}); "
                            "keep one")
        found[stem] = rel
    return found


def read_image(path: str) -> torch.Tensor:
    """float32 (3, H, W) RGB in [0, 1]; a file that cannot be decoded is a user error naming it."""
    return to_float(decode_file(path))


def decode_file(path: str, channels: Literal["rgb", "stored"] = "rgb") -> torch.Tensor:
    """The decoded integer image of a file: see :func:`decode_bytes`."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise UserError(f"{path}: cannot read image ({exc.strerror or exc})") from exc
    return decode_bytes(data, path, channels)


def decode_bytes(data: Union[bytes, bytearray, memoryview], source: str,
                 channels: Literal["rgb", "stored"] = "rgb") -> torch.Tensor:
    """The decoded integer image (uint8, or uint16 for 16-bit PNG), (C, H, W): crop it before :func:`to_float`,
    which then converts only the pixels kept. ``source`` (a path, or an LMDB key) names it in errors.

    ``channels="rgb"``: always RGB (training and test sets). ``"stored"``: the channels the file holds, gray (1),
    gray + alpha (2), RGB (3) or RGBA (4), with a palette PNG as RGB(A) and a CMYK JPEG as RGB (inference on the
    user's images). Either way the EXIF orientation is applied, as viewers (and OpenCV's ``imread``, which
    BasicSR's loaders use) show the image.
    """
    decode = _decoder()
    buffer = bytes(data) if isinstance(data, memoryview) else data
    try:
        img = decode(buffer, mode="RGB" if channels == "rgb" else "UNCHANGED", output_dtype="auto")
        if img.dim() == 4:  # an animated format: its first frame
            img = img[0]
        if channels == "stored" and img.shape[0] == 4 and bytes(buffer[:2]) == b"\xff\xd8":  # CMYK JPEG
            img = decode(buffer, mode="RGB", output_dtype="auto")
        return img
    except (RuntimeError, OSError, ValueError) as exc:
        reason = first_line(exc)
        raise UserError(f"{source}: cannot read image ({reason})") from exc


_DECODER: List[Any] = []


def _decoder() -> Any:
    """TorchCodec's ``decode_image``, imported once; one clear line when it is missing or cannot load (its
    compiled code is built for one torch version: ``pip install`` the torchcodec release paired with yours)."""
    if not _DECODER:
        try:
            from torchcodec.decoders import decode_image
        except (ImportError, OSError, RuntimeError) as exc:
            reason = first_line(exc)
            raise UserError(f"image decoding needs TorchCodec's image decoders, which did not load ({reason}); "
                            f"install the torchcodec release made for torch {torch.__version__.split('+')[0]}: "
                            "pip install -U torchcodec") from exc
        _DECODER.append(decode_image)
    return _DECODER[0]


def to_float(img: torch.Tensor) -> torch.Tensor:
    """Integer image -> float32 in [0, 1], scaled by its own range (255, or 65535 for 16-bit PNG)."""
    if img.is_floating_point():
        return img
    return img.to(torch.float32).div_(float(torch.iinfo(img.dtype).max))


def to_integer(img: torch.Tensor, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """The inverse of :func:`to_float`: float in [0, 1] (clamped) -> rounded uint8 or uint16."""
    top = float(torch.iinfo(dtype).max)
    return img.detach().float().clamp(0.0, 1.0).mul(top).round_().to(dtype)


def write_image(img: torch.Tensor, path: str, compression_level: int = 6) -> None:
    """Write a uint8 or uint16 (C, H, W) tensor, C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA), as PNG
    of that bit depth and colour type, creating the folder. Atomic: written to a temporary file in the same
    folder and renamed, so an interrupted write never leaves a half image under the real name."""
    write_bytes_atomic(png_bytes(img, compression_level), path)


def png_bytes(img: torch.Tensor, compression_level: int = 6) -> bytes:
    """The PNG file of an image (see :func:`write_image`) as bytes: for files, and for LMDB values."""
    img = img.cpu()
    if img.dtype == torch.uint8 and img.dim() == 3 and img.shape[0] in (1, 3):
        from torchcodec.encoders import PngEncoder

        return PngEncoder(img.contiguous()).to_tensor(compression_level=compression_level).numpy().tobytes()
    return encode_png(img, compression_level)


def write_bytes_atomic(data: bytes, path: str) -> None:
    """``path`` holds ``data`` completely or is left as it was: temporary file, flush, rename."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> IHDR colour type (gray, gray+alpha, RGB, RGBA)


def encode_png(img: torch.Tensor, compression_level: int = 6) -> bytes:
    """PNG bytes of a uint8 or uint16 (C, H, W) image with 1 to 4 channels (TorchCodec writes 8-bit gray and
    RGB only). Each row uses the 'Up' filter, which suits photographs."""
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

    body = zlib.compress(filtered.tobytes(), compression_level)
    return _PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


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
        raise UserError(f"{path}: cannot read image ({exc.strerror or exc})") from exc
    except struct.error:
        pass
    raise UserError(f"{path}: cannot read image (not a valid PNG or JPEG file)")


def _jpeg_size(fh, path: str) -> Tuple[int, int]:
    """(width, height) as decoded: the frame header's, swapped when the EXIF orientation turns the image by 90
    degrees (decoding applies it)."""
    fh.seek(2)
    turned = False
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
            return (height, width) if turned else (width, height)
        if marker[1] == 0xE1:  # APP1: EXIF
            turned = _exif_orientation(fh.read(length - 2)) in (5, 6, 7, 8) or turned
            continue
        fh.seek(length - 2, os.SEEK_CUR)
    raise UserError(f"{path}: cannot read image (JPEG without a readable frame header; truncated?)")


def _exif_orientation(segment: bytes) -> int:
    """The orientation tag (0x0112) of an APP1 EXIF segment; 1 (as stored) when absent or unreadable."""
    if not segment.startswith(b"Exif\x00\x00") or len(segment) < 14:
        return 1
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
            tag, _kind, _n = struct.unpack(order + "HHI", entry[:8])
            if tag == 0x0112:
                return struct.unpack(order + "H", entry[8:10])[0]
    except struct.error:
        pass
    return 1
