"""See what the Real-ESRGAN degradation keys do: a PNG grid of GT crops, the LR inputs the pipeline made from
them, and their kernels.

Usage::

    python scripts/show_degradations.py -opt options/train/example_realesrgan.yml
    python scripts/show_degradations.py -opt my.yml --count 12 --iteration 5 -o grid.png

One row per training sample (the first ``--count`` of epoch 0, as the training set draws them): the GT patch,
the LR input enlarged to the same size (nearest neighbour, so the artefacts show as they are), then
``kernel1``, ``kernel2`` and the final ``sinc_kernel``, each scaled to its own range. The degradation's random
draws are the ones training makes at iteration ``--iteration`` (default 1), without the training-pair pool.
Nothing else is written; the options file is checked as train.py checks it.
"""
from __future__ import annotations

import argparse
import os
from typing import Any, List, Optional

import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from ..data.build import build_dataset, num_samples
from ..data.image_io import to_integer, write_image
from ..errors import UserError
from ..option_rules import requirements_of
from ..options import Options, TrainingOptions, load_options
from ..registry import MODEL_REGISTRY
from .args import add_tail_arguments

GAP = 2  # pixels of white between tiles


def _tile(img: torch.Tensor, size: int) -> torch.Tensor:
    """(C, h, w) in [0, 1] -> (3, size, size), enlarged by nearest neighbour."""
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return F.interpolate(img.unsqueeze(0), size=(size, size), mode="nearest")[0]


def _kernel_tile(kernel: torch.Tensor, size: int) -> torch.Tensor:
    low, high = kernel.min(), kernel.max()
    scaled = (kernel - low) / (high - low) if float(high - low) > 0 else torch.zeros_like(kernel)
    return _tile(scaled.unsqueeze(0), size)


def grid(rows: List[List[torch.Tensor]]) -> torch.Tensor:
    """Rows of equal (3, s, s) tiles -> one (3, H, W) image with white gaps."""
    size = rows[0][0].shape[-1]
    cols = max(len(row) for row in rows)
    out = torch.ones(3, len(rows) * (size + GAP) + GAP, cols * (size + GAP) + GAP)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            top, left = GAP + r * (size + GAP), GAP + c * (size + GAP)
            out[:, top:top + size, left:left + size] = tile
    return out


def require_synthesis(options: Options, script: str) -> Any:
    """The options' model class, which must synthesise its LR inputs (RealESRNetModel / RealESRGANModel)."""
    model = MODEL_REGISTRY.get(options.model_type)
    if not requirements_of(model).synthesizes_inputs:
        raise UserError(f"{options.source_file}: model_type {options.model_type} trains on stored LR images; "
                        f"{script} applies the synthetic degradation of RealESRNetModel / RealESRGANModel")
    return model


def degradation_grid(options: TrainingOptions, count: int, iteration: int) -> torch.Tensor:
    """The grid image (float, (3, H, W)) for the options."""
    from ..models.realesrgan_model import Synthesis

    model = require_synthesis(options, "show_degradations.py")
    dataset = build_dataset(options, "train")
    count = min(count, num_samples(dataset))
    batch = default_collate([dataset[(0, i)] for i in range(count)])
    synthesis = Synthesis(options, torch.device("cpu"), model.synthesis_targets(options))
    pairs = synthesis.make(batch, iteration, use_pool=False)
    size = synthesis.gt_size
    rows = []
    for i in range(count):
        rows.append([_tile(pairs["gt"][i], size), _tile(pairs["lq"][i], size),
                     *(_kernel_tile(batch[key][i], size) for key in ("kernel1", "kernel2", "sinc_kernel"))])
    return grid(rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="show_degradations.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-opt", "--opt", required=True, metavar="FILE", help="training options (RealESRNetModel / "
                                                                             "RealESRGANModel)")
    parser.add_argument("-o", "--output", metavar="PNG", help="the image to write (default: "
                                                              "<experiments_root>/<name>_degradations.png)")
    parser.add_argument("--count", type=int, default=8, help="samples, one row each (default: 8)")
    parser.add_argument("--iteration", type=int, default=1, help="draw the degradation of this training iteration "
                                                                 "(default: 1)")
    add_tail_arguments(parser, force_help="replace the output file if it exists")
    args = parser.parse_args(argv)
    if args.count < 1 or args.iteration < 0:
        raise UserError("--count must be at least 1 and --iteration at least 0")
    from ..checks import check_files

    options = load_options(args.opt, args.overrides, file_checks=check_files)
    # beside the experiment folders (untracked outputs), not inside one: that folder is the run's
    output = args.output or os.path.join(options.path.experiments_root, f"{options.name}_degradations.png")
    if os.path.exists(output) and not args.force:
        raise UserError(f"{output}: exists; choose another -o, or add --force to replace it")
    if not output.lower().endswith(".png"):
        raise UserError(f"{output}: the grid is written as PNG; name it .png")
    image = degradation_grid(options, args.count, args.iteration)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    write_image(to_integer(image), output)
    print(f"wrote {output}: {image.shape[2]}x{image.shape[1]}, one row per sample: GT, LR input (enlarged), "
          "kernel1, kernel2, sinc_kernel")
    return 0
