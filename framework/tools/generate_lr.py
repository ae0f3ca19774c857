"""LR images by MATLAB's bicubic ``imresize`` (antialiased), the way the benchmark sets and papers make them.

Usage (from the repository root, after ``pip install -e .``)::

    python scripts/generate_lr.py --input datasets/DIV2K/HR_sub --output datasets/DIV2K/LR_x4_sub --scale 4
    python scripts/generate_lr.py --input DIV2K_train_HR --output DIV2K_train_LR_x4 --scale 4 --suffix x4

Each image is cropped to a multiple of ``--scale`` (bottom and right, as the datasets do) and shrunk with
:func:`framework.data.degradations.bicubic_downsample`: the function ``BicubicSRDataset`` degrades with during
training and the bicubic baseline of validation enlarges with, so stored and on-the-fly LR images are the
same. ``x.png`` (or ``x.jpg``) gives ``x<suffix>.png``; PNG, 8 or 16 bits as the input. A rerun skips
finished files; an interrupted run leaves no half-written file.
"""
from __future__ import annotations

import argparse
import functools
import os
from typing import List, Optional, Tuple

from tqdm import tqdm

from ..data.degradations import bicubic_downsample
from ..data.image_io import decode_file, images_by_stem, to_float, to_integer, write_image
from ..data.transforms import mod_crop
from ..errors import UserError
from .args import add_verbose_argument
from .parallel import check_output_folder, default_workers, remove_stale_temp_files, run_jobs


def lr_image(hr, scale: int):
    """The LR image (same integer dtype) of a decoded HR image."""
    return to_integer(bicubic_downsample(to_float(mod_crop(hr, scale)), scale), hr.dtype)


def generate_one(rel: str, input: str, output: str, scale: int, suffix: str) -> Tuple[bool, str]:
    """(written, problem) for one image."""
    out = os.path.join(output, os.path.splitext(rel)[0] + suffix + ".png")
    if os.path.exists(out):
        return False, ""
    try:
        hr = decode_file(os.path.join(input, rel))
        if min(hr.shape[1:]) < scale:
            return False, f"{os.path.join(input, rel)}: smaller than the scale {scale}; skipped"
        write_image(lr_image(hr, scale), out)
        return True, ""
    except UserError as exc:
        return False, f"{exc}; skipped"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="generate_lr.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="folder of HR images; sub-folders are kept")
    parser.add_argument("--output", required=True, help="folder for the LR images")
    parser.add_argument("--scale", type=int, required=True, help="downscaling factor (2, 3, 4, ...)")
    parser.add_argument("--suffix", default="",
                        help="added to each name (DIV2K's 'x4': then filename_tmpl: '{}x4'; default: none)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes (default: one per core, %(default)s)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.scale < 1:
        raise UserError(f"--scale must be a positive whole number, got {args.scale}")
    if not os.path.isdir(args.input):
        raise UserError(f"--input: folder '{args.input}' does not exist")
    problem = check_output_folder(args.input, args.output)
    if problem:
        raise UserError(problem)
    files = sorted(images_by_stem(args.input).values())
    if not files:
        raise UserError(f"--input: no PNG/JPEG images in '{args.input}'")
    os.makedirs(args.output, exist_ok=True)
    remove_stale_temp_files(args.output)
    job = functools.partial(generate_one, input=args.input, output=args.output, scale=args.scale,
                            suffix=args.suffix)
    written, problems = 0, []
    for done, problem in run_jobs(job, files, args.workers, f"LR x{args.scale}"):
        written += done
        if problem:
            problems.append(problem)
            tqdm.write(problem)
    print(f"{args.output}: wrote {written} LR x{args.scale} images"
          + (f" ({len(files) - written - len(problems)} were already there)" if len(files) - written > len(problems)
             else ""))
    if problems:
        print(f"{len(problems)} image(s) skipped (see above)")
        return UserError.exit_code
    return 0
