"""Data throughput on this machine: decoders, and the training loader on sub-image folders against LMDB.

``python scripts/bench_data.py --help``. Everything it reads it first generates in a temporary folder (2K
images drawn like the example set, saved as PNG and JPEG; sub-images and LR made with the framework's own
tools; an LMDB packed from them), so it downloads nothing and needs no data set. Timings are medians of
interleaved repeats: every repeat runs each candidate once, in turn, so load from other processes on the
machine spreads over all of them instead of hitting one.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import warnings
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ..data.example_data import render_image
from ..data.image_io import encode_png, write_image

Decoder = Callable[[bytes], torch.Tensor]


def _torchcodec() -> Decoder:
    from torchcodec.decoders import decode_image

    return lambda data: decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode="RGB",
                                     output_dtype="auto")


def _pillow() -> Decoder:
    from PIL import Image

    def decode(data: bytes) -> torch.Tensor:
        with Image.open(io.BytesIO(data)) as img:
            return torch.from_numpy(np.asarray(img.convert("RGB"))).permute(2, 0, 1)
    return decode


def _opencv() -> Decoder:
    import cv2

    def decode(data: bytes) -> torch.Tensor:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
        assert img is not None
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        return torch.from_numpy(img).permute(2, 0, 1)
    return decode


def _torchvision() -> Decoder:
    from torchvision.io import ImageReadMode, decode_image

    def decode(data: bytes) -> torch.Tensor:
        with warnings.catch_warnings():  # deprecated since 0.29: measured as the former default only
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    return decode


def _framework() -> Decoder:
    from ..data.image_io import decode_bytes

    return lambda data: decode_bytes(data, "bench")


DECODERS: Dict[str, Callable[[], Decoder]] = {"framework": _framework, "torchcodec": _torchcodec,
                                                "pillow": _pillow, "opencv": _opencv,
                                                "torchvision (deprecated)": _torchvision}


def available_decoders(names: Optional[List[str]] = None) -> Dict[str, Decoder]:
    """The decoders whose package is installed (``pip install torchcodec pillow opencv-python-headless``)."""
    out = {}
    for name, make in DECODERS.items():
        if names and name not in names:
            continue
        try:
            out[name] = make()
        except ImportError as exc:
            print(f"skipping {name}: {exc}")
    return out


def render_large(width: int, height: int, seed: int, tile: int = 512) -> torch.Tensor:
    """A uint8 (3, height, width) photo-sized image: example-set tiles, flipped at random, with mild noise, so
    that PNG compresses it about as well as a photograph (a plain render would compress far better)."""
    g = torch.Generator().manual_seed(seed)
    tiles = [render_image(tile, 4, g) for _ in range(3)]
    rows = []
    for _ in range(-(-height // tile)):
        row = []
        for _ in range(-(-width // tile)):
            t = tiles[int(torch.randint(len(tiles), (1,), generator=g))]
            row.append(t.flip(-1) if bool(torch.randint(2, (1,), generator=g)) else t)
        rows.append(torch.cat(row, dim=2))
    img = torch.cat(rows, dim=1)[:, :height, :width]
    img = img + torch.randn(img.shape, generator=g) * (3.0 / 255)
    return img.mul_(255).round_().clamp_(0, 255).to(torch.uint8)


def write_jpeg(img: torch.Tensor, path: str, quality: int = 95) -> None:
    from PIL import Image

    Image.fromarray(img.permute(1, 2, 0).numpy()).save(path, quality=quality)


def decode_rates(files: Dict[str, List[bytes]], decoders: Dict[str, Decoder], repeats: int
                 ) -> Dict[str, Dict[str, float]]:
    """Median images/s per (kind of file, decoder), one thread, the repeats interleaved across decoders."""
    torch.set_num_threads(1)
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:
        pass
    times: Dict[str, Dict[str, List[float]]] = {k: {d: [] for d in decoders} for k in files}
    for kind, blobs in files.items():
        for decode in decoders.values():
            decode(blobs[0])  # warm-up: library loading, first allocations
        for _ in range(repeats):
            for name, decode in decoders.items():
                start = time.perf_counter()
                for data in blobs:
                    decode(data)
                times[kind][name].append((time.perf_counter() - start) / len(blobs))
    return {k: {d: 1.0 / statistics.median(v) for d, v in per.items()} for k, per in times.items()}


def check_identical(files: Dict[str, List[bytes]], decoders: Dict[str, Decoder]) -> Dict[str, str]:
    """Per decoder: whether it gives the framework decoder's pixels for the PNG files (lossless)."""
    out = {}
    for name, decode in decoders.items():
        same = all(torch.equal(decode(d).contiguous(), decoders["framework"](d).contiguous())
                   for kind, blobs in files.items() if "PNG" in kind for d in blobs[:2])
        out[name] = "identical" if same else "DIFFERENT"
    return out


def make_decode_files(folder: str, count: int, seed: int) -> Dict[str, List[bytes]]:
    os.makedirs(folder, exist_ok=True)
    small = [encode_png(render_large(128, 128, seed + i)) for i in range(32)]
    large_png, large_jpg = [], []
    for i in range(count):
        img = render_large(2040, 1356, seed + 100 + i)
        path = os.path.join(folder, f"{i:04d}.png")
        write_image(img, path)
        with open(path, "rb") as fh:
            large_png.append(fh.read())
        write_jpeg(img, path[:-4] + ".jpg")
        with open(path[:-4] + ".jpg", "rb") as fh:
            large_jpg.append(fh.read())
    return {"example PNG 128x128": small, "2K PNG 2040x1356": large_png, "2K JPEG q95 2040x1356": large_jpg}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_data.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4, help="2K images to generate (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats per measurement (default 5)")
    parser.add_argument("--decoders", nargs="*", help="limit to these decoders (default: all installed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        files = make_decode_files(os.path.join(tmp, "2k"), args.images, args.seed)
        decoders = available_decoders(args.decoders)
        sizes = {k: statistics.mean(len(b) for b in v) / 1e6 for k, v in files.items()}
        rates = decode_rates(files, decoders, args.repeats)
        same = check_identical(files, decoders) if "framework" in decoders else {}
        print(f"\nDecode speed, images/s on one thread (median of {args.repeats} interleaved repeats)")
        kinds = list(files)
        print("| decoder | " + " | ".join(f"{k} ({sizes[k]:.2f} MB)" for k in kinds) + " | PNG pixels |")
        print("|---|" + "---|" * (len(kinds) + 1))
        for name in decoders:
            print(f"| {name} | " + " | ".join(f"{rates[k][name]:.1f}" for k in kinds) + f" | {same.get(name, '')} |")
    return 0


def scale_figures(count: int, folder: str) -> Dict[str, float]:
    """Seconds to set up a paired set of ``count`` images: scanning and pairing two folders, reading a
    meta-info list, and the header check of every image (tiny PNGs, the same bytes each: file-system cost)."""
    from ..data.datasets import PairedImageDataset

    tiny = encode_png(torch.zeros(3, 8, 8, dtype=torch.uint8))
    small = encode_png(torch.zeros(3, 4, 4, dtype=torch.uint8))
    for side, data in (("gt", tiny), ("lq", small)):
        os.makedirs(os.path.join(folder, side), exist_ok=True)
        for i in range(count):
            with open(os.path.join(folder, side, f"{i:06d}.png"), "wb") as fh:
                fh.write(data)
    meta = os.path.join(folder, "meta_info.txt")
    with open(meta, "w") as fh:
        fh.writelines(f"{i:06d}.png (8,8,3) 1\n" for i in range(count))
    gt, lq = os.path.join(folder, "gt"), os.path.join(folder, "lq")
    out = {}
    start = time.perf_counter()
    scanned = PairedImageDataset(gt, lq, scale=2)
    out["scan and pair two folders"] = time.perf_counter() - start
    start = time.perf_counter()
    listed = PairedImageDataset(gt, lq, scale=2, meta_info_file=meta)
    out["meta_info_file list"] = time.perf_counter() - start
    assert len(scanned) == len(listed) == count
    start = time.perf_counter()
    scanned.verify_files()
    out["header check of every pair"] = time.perf_counter() - start
    return out
