"""What the comparison strips and the per-image table add to a validation: ``python scripts/bench_validation.py``.

The example network (``options/train/example.yml``: MSRResNet x2, 32 features, 4 blocks) validates ``--images``
generated images of ``--size`` GT pixels, ``--repeats`` times each way, interleaved so that load from other
processes hits both: the validation pass, and what ``val.show_images: 3`` strips of ``val.show_crop: 128`` (made
from the pass's outputs, written to a TensorBoard event file) plus the per-image CSV rows add to it. It prints
the median milliseconds of each and their ratio. Training steps run no code of either (both live in the
validation pass and the logger's validation calls), so outside validation they cost nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any, Dict, List

import torch

from ..data.degradations import bicubic_downsample
from ..data.example_data import render_image
from ..logger import TensorBoard
from ..options import load_options
from ..per_image import append_rows, image_rows, table_path
from ..registry import ARCH_REGISTRY
from ..metrics import tensor_to_uint8
from ..validation import comparison_strip, evaluate
from .common import EXAMPLE_OPTIONS


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_validation.py", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="GT side in pixels (default 256)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    options = load_options(EXAMPLE_OPTIONS)
    assert options.val is not None
    scale, metrics = options.scale, options.val.metrics
    torch.manual_seed(0)
    net = options.network_g.build(ARCH_REGISTRY).eval()
    gen = torch.Generator().manual_seed(0)
    batches: List[Dict[str, Any]] = []
    for i in range(args.images):
        gt = render_image(args.size, scale, gen)[None]
        batches.append({"lq": bicubic_downsample(gt, scale), "gt": gt, "name": [f"{i:04d}"]})

    @torch.no_grad()
    def infer(lq: torch.Tensor) -> torch.Tensor:
        return net(lq)

    outputs = [tensor_to_uint8(infer(b["lq"])[0]) for b in batches[:3]]
    gts = [tensor_to_uint8(b["gt"][0]) for b in batches[:3]]
    plain: List[float] = []
    extra: List[float] = []
    with tempfile.TemporaryDirectory() as folder:
        board = TensorBoard(os.path.join(folder, "tb"), 0)
        for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
            start = time.perf_counter()
            result = evaluate(infer, batches, metrics)  # type: ignore[arg-type]  # any iterable of batches
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()  # what show_images: 3 and the table add to that pass
            for i, (out, gt) in enumerate(zip(outputs, gts, strict=True)):
                board.image(f"val/bench/{i:04d}", comparison_strip(batches[i]["lq"], out, gt, scale, 128), repeat)
            append_rows(table_path(folder, "bench"), image_rows("bench", repeat, result.rows(), {}))
            extra.append(time.perf_counter() - start)
        board.close()
    for label, pick in (("median", statistics.median), ("min", min)):  # min: the least disturbed by other jobs
        base, added = pick(plain[1:]), pick(extra[1:])
        print(f"validation of {args.images} images of {args.size} px (x{scale}, {', '.join(metrics)}), {label} of "
              f"{args.repeats}: {base * 1000:.1f} ms; 3 strips of 128 px written to TensorBoard + the per-image "
              f"rows: {added * 1000:.2f} ms ({added / base * 100:.2f}% of the validation)")
    return 0
