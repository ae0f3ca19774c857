"""JPEG degradation speed: the batched torch codec against libjpeg (Pillow) image by image.

``python scripts/bench_jpeg.py --help``. Each batch gets one random quality per image in ``--quality-range``
(as Real-ESRGAN's ``jpeg_range``); Pillow gets the same qualities rounded to integers and includes the
tensor <-> 8-bit conversions a data pipeline would pay. Timings are medians of interleaved repeats (each
repeat runs every candidate once, in turn), so load from other processes spreads over all of them.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ..data.example_data import render_image
from ..data.jpeg import jpeg_compress

Codec = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pillow_jpeg(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """libjpeg through Pillow, one image at a time (4:2:0), back to a float batch on the input's device."""
    from PIL import Image

    u8 = (images.detach().cpu() * 255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for img, q in zip(u8, quality.round().int().tolist(), strict=True):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling=2)
        buf.seek(0)
        with Image.open(buf) as decoded:
            out.append(torch.from_numpy(np.array(decoded.convert("RGB"))))
    return (torch.stack(out).permute(0, 3, 1, 2).float() / 255).to(images.device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_codecs(codecs: Dict[str, Codec], images: torch.Tensor, quality: torch.Tensor,
                repeats: int) -> Dict[str, float]:
    """Median seconds per call of each codec on (images, quality), interleaved, after one warm-up each."""
    times: Dict[str, List[float]] = {name: [] for name in codecs}
    for codec in codecs.values():
        codec(images, quality)
    for _ in range(repeats):
        for name, codec in codecs.items():
            _sync(images.device)
            start = time.perf_counter()
            codec(images, quality)
            _sync(images.device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_jpeg.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="images per batch (default: %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256],
                        help="square image sizes to time (default: %(default)s)")
    parser.add_argument("--quality-range", type=float, nargs=2, default=[30.0, 95.0], metavar=("LO", "HI"),
                        help="per-image qualities drawn uniformly from this range (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="device of the torch codec (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved repeats (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(args.seed)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, "
          f"batch {args.batch}, qualities in {args.quality_range}, median of {args.repeats} repeats\n")
    print("| size | torch (ms/batch) | Pillow per image (ms/batch) | Pillow / torch |")
    print("|---|---|---|---|")
    lo, hi = args.quality_range
    for size in args.sizes:
        images = torch.stack([render_image(size, 4, g) for _ in range(args.batch)]).to(device)
        quality = (lo + (hi - lo) * torch.rand(args.batch, generator=g)).to(device)
        seconds = time_codecs({"torch": jpeg_compress, "pillow": pillow_jpeg}, images, quality, args.repeats)
        print(f"| {args.batch}x3x{size}x{size} | {seconds['torch'] * 1e3:.1f} | {seconds['pillow'] * 1e3:.1f} | "
              f"{seconds['pillow'] / seconds['torch']:.2f} |")
    return 0
