"""A fixed degraded validation set: each HR image through the Real-ESRGAN pipeline of a training options file.

Usage::

    python scripts/degrade_images.py -opt options/train/my_realesrnet.yml -i val/HR -o val/LR_x4_degraded
    python scripts/degrade_images.py -opt my.yml -i HR -o LR --seed 1 --force

Training degrades random crops anew each iteration; validating on bicubic LR images measures something else
(a Real-ESRGAN model ends below bicubic there). This writes, for each HR image, the LR input the training
pipeline makes from the whole image: the kernels drawn as the options' ``datasets.train`` (RealESRGANDataset)
draws them, the ``degradation`` section's :class:`~framework.data.synthesis.Degradation` applied to it as a
batch of one on the CPU, rounded to an 8-bit PNG of size HR / scale (the HR cropped to a multiple of the scale).
Every draw comes from (``--seed``, the image's name): rerunning gives the same files. Point a
PairedImageDataset's ``dataroot_lq`` at the output (names pair by stem) and validation compares the model with
bicubic upsampling of the same degraded inputs. The HR is degraded as it is, not sharpened (``gt_usm``): the
validation target is the HR file.
"""
from __future__ import annotations

import argparse
import os
from typing import List, Optional

from tqdm import tqdm

from ..data.build import build_dataset
from ..data.degraded_set import degrade_image
from ..data.image_io import decode_file, images_by_stem, write_image
from ..data.synthesis import DegradationOptions, degradation_from
from ..errors import UserError
from ..options import load_options
from .args import add_tail_arguments
from .parallel import check_output_folder, remove_stale_temp_files
from .show_degradations import require_synthesis


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="degrade_images.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-opt", "--opt", required=True, metavar="FILE",
                        help="training options (RealESRNetModel / RealESRGANModel) whose pipeline to apply")
    parser.add_argument("-i", "--input", required=True, metavar="FOLDER", help="HR images; sub-folders are kept")
    parser.add_argument("-o", "--output", required=True, metavar="FOLDER", help="folder for the LR PNGs")
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw, with each image's name "
                                                            "(default: 0)")
    add_tail_arguments(parser, force_help="replace LR files that exist")
    args = parser.parse_args(argv)
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    if not os.path.isdir(args.input):
        raise UserError(f"-i: folder '{args.input}' does not exist")
    problem = check_output_folder(args.input, args.output, what="-o")
    if problem:
        raise UserError(problem)
    from ..checks import check_files

    options = load_options(args.opt, args.overrides, file_checks=check_files)
    require_synthesis(options, "degrade_images.py")
    files = sorted(images_by_stem(args.input).items())
    if not files:
        raise UserError(f"-i: no PNG/JPEG images in '{args.input}'")
    outputs = [os.path.join(args.output, stem + ".png") for stem, _ in files]
    existing = [out for out in outputs if os.path.exists(out)]
    if existing and not args.force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]}: exists{more}; add --force to replace, or choose another -o")
    kernels = build_dataset(options, "train").kernels  # type: ignore[attr-defined]
    degradation = degradation_from(options.section("degradation", DegradationOptions), options.scale)
    if os.path.isdir(args.output):
        remove_stale_temp_files(args.output)
    for (stem, rel), out in zip(tqdm(files, desc=f"degrade x{options.scale}", unit="img"), outputs, strict=True):
        path = os.path.join(args.input, rel)
        hr = decode_file(path)
        if min(hr.shape[1:]) < options.scale:
            raise UserError(f"{path}: {hr.shape[2]}x{hr.shape[1]} is too small for scale {options.scale}")
        write_image(degrade_image(hr, degradation, kernels, args.seed, stem), out)
    print(f"wrote {len(files)} LR x{options.scale} images to {args.output} (seed {args.seed}, the pipeline of "
          f"{args.opt})")
    return 0
