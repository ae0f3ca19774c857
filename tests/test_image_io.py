"""Images as stored (gray, alpha, palette, 16 bits) in and out: what inference reads and writes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from framework.data.image_io import decode_file, encode_png, to_float, to_integer, write_image
from framework.errors import UserError


@pytest.mark.parametrize("channels,mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16])
def test_png_round_trip_keeps_channels_and_bit_depth(tmp_path: Path, channels: int, mode: str,
                                                      dtype: torch.dtype) -> None:
    top = torch.iinfo(dtype).max
    img = torch.randint(0, top + 1, (channels, 13, 17), generator=torch.Generator().manual_seed(channels))
    img = img.to(dtype)
    path = str(tmp_path / "x.png")
    write_image(img, path)
    back = decode_file(path, channels="stored")
    assert back.dtype == dtype and torch.equal(back.long(), img.long())
    with Image.open(path) as pil:  # another decoder agrees (Pillow opens 16-bit colour PNGs as 8-bit)
        assert pil.size == (17, 13)
        if dtype == torch.uint8:
            assert pil.mode == mode
            assert np.array_equal(np.asarray(pil).reshape(13, 17, channels).transpose(2, 0, 1), img.numpy())


def test_encode_png_refuses_what_png_cannot_hold() -> None:
    with pytest.raises(ValueError, match="1-4 channels"):
        encode_png(torch.zeros(5, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_png(torch.zeros(3, 2, 2))


def test_palette_png_is_colour_with_alpha_only_when_transparent(tmp_path: Path) -> None:
    indices = (np.arange(120).reshape(10, 12) % 7).astype(np.uint8)
    palette = [(i * 37) % 256 for i in range(21)]
    for name, extra in (("opaque.png", {}), ("transparent.png", {"transparency": 3})):
        pil = Image.fromarray(indices, "P")
        pil.putpalette(palette)
        pil.save(tmp_path / name, **extra)
        with Image.open(tmp_path / name) as saved:
            expected = np.asarray(saved.convert("RGBA")).transpose(2, 0, 1)
        img = decode_file(str(tmp_path / name), channels="stored")
        assert img.shape[0] == (4 if extra else 3)
        assert np.array_equal(img.numpy(), expected[:img.shape[0]])
    assert decode_file(str(tmp_path / "transparent.png")).shape[0] == 3  # the training path: always RGB


def test_gray_and_cmyk_jpeg(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.jpg")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert decode_file(str(tmp_path / "gray.jpg"), channels="stored").shape == (1, 10, 12)
    assert decode_file(str(tmp_path / "cmyk.jpg"), channels="stored").shape == (3, 10, 12)


def test_to_integer_inverts_to_float_and_clamps() -> None:
    img = torch.randint(0, 65536, (3, 4, 5)).to(torch.uint16)
    assert torch.equal(to_integer(to_float(img), torch.uint16).long(), img.long())
    assert to_integer(torch.tensor([-0.5, 0.5, 1.5])).tolist() == [0, 128, 255]


def test_unreadable_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(UserError, match="bad.png: cannot read image"):
        decode_file(str(tmp_path / "bad.png"), channels="stored")


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_is_applied_and_the_header_size_agrees(tmp_path: Path, orientation: int) -> None:
    from framework.data.image_io import image_size

    rgb = np.random.default_rng(0).integers(0, 256, (10, 16, 3), dtype=np.uint8)
    pil = Image.fromarray(rgb)
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.save(tmp_path / "x.jpg", exif=exif, quality=95)
    img = decode_file(str(tmp_path / "x.jpg"))
    with Image.open(tmp_path / "x.jpg") as opened:
        from PIL import ImageOps

        shown = np.asarray(ImageOps.exif_transpose(opened))
    assert img.shape[1:] == shown.shape[:2] == ((16, 10) if orientation in (6, 8) else (10, 16))
    assert image_size(str(tmp_path / "x.jpg")) == (img.shape[2], img.shape[1])
    assert np.abs(img.permute(1, 2, 0).numpy().astype(int) - shown.astype(int)).max() <= 8  # two JPEG decoders


def test_no_torchvision_image_io_anywhere() -> None:
    """torchvision's image decoding/encoding is deprecated (0.29): decode_bytes (TorchCodec) is the one
    decoder; pytest.ini and conftest make the deprecation warning an error in and below the tests too."""
    repo = Path(__file__).resolve().parent.parent
    sources = [*repo.glob("framework/**/*.py"), *repo.glob("scripts/*.py"), repo / "train.py", repo / "test.py"]
    measured = repo / "framework" / "bench" / "data.py"  # times torchvision's decoder beside the others
    offenders = [str(p.relative_to(repo)) for p in sources
                 if p != measured and "torchvision.io" in p.read_text(encoding="utf-8")]
    assert offenders == []
