"""Crop large images into overlapping sub-images (BasicSR's ``extract_subimages.py``), for GT and LQ at once.

Usage (from the repository root, after ``pip install -e .``)::

    python scripts/extract_subimages.py --input datasets/DIV2K/DIV2K_train_HR --output datasets/DIV2K/HR_sub
    python scripts/extract_subimages.py --input DIV2K_train_HR --output HR_sub \\
        --lq DIV2K_train_LR_bicubic/X4 --lq-output LR_x4_sub --scale 4 --lq-tmpl '{}x4'

Reading many small crops is much faster than decoding a 2K image for each 256-pixel training crop. The crops
start every ``--step`` pixels; when the last one ends more than ``--thresh-size`` pixels before the edge, one
more crop ends exactly at the edge. ``x.png`` gives ``x_s001.png``, ``x_s002.png``, ... row by row (PNG,
channels and bit depth as stored). With ``--lq``, LQ crops are ``--crop-size / --scale`` at the same places and
take the GT names, so the two output folders pair by name. A rerun skips finished files and an interrupted
run leaves no half-written image (each file is written to a temporary name and renamed), so rerunning the
same command resumes.
"""
from __future__ import annotations

import argparse
import functools
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from tqdm import tqdm

from ..data.image_io import decode_file, image_size, images_by_stem, write_image
from ..data.transforms import pair_scale_problem
from ..errors import UserError
from .args import add_verbose_argument
from .parallel import check_output_folder, default_workers, remove_stale_temp_files, run_jobs


def crop_starts(length: int, crop: int, step: int, thresh: int) -> List[int]:
    """Start offsets of the crops along one side: every ``step``, plus an edge crop when more than ``thresh``
    pixels would be left out; none when the side is shorter than ``crop``."""
    if length < crop:
        return []
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > thresh:
        starts.append(length - crop)
    return starts


def crop_grid(height: int, width: int, crop: int, step: int, thresh: int) -> List[Tuple[int, int]]:
    """(top, left) of every crop, row by row: the order of the ``_s001``, ``_s002``, ... names."""
    return [(top, left) for top in crop_starts(height, crop, step, thresh)
            for left in crop_starts(width, crop, step, thresh)]


@dataclass(frozen=True)
class ExtractConfig:
    input: str
    output: str
    crop_size: int
    step: int
    thresh_size: int
    compression_level: int
    lq: Optional[str] = None
    lq_output: Optional[str] = None
    scale: int = 1


def sub_name(stem: str, index: int) -> str:
    return f"{stem}_s{index:03d}.png"


@dataclass(frozen=True)
class ImageResult:
    name: str
    written: int
    existing: int
    problem: str = ""


def extract_one(pair: Tuple[str, Optional[str]], cfg: ExtractConfig) -> ImageResult:
    """Crop one image (and its LQ): write the crops not yet on disk."""
    gt_rel, lq_rel = pair
    stem = os.path.splitext(gt_rel)[0]
    gt_path = os.path.join(cfg.input, gt_rel)
    s = cfg.scale
    crop, step, thresh = cfg.crop_size // s, cfg.step // s, cfg.thresh_size // s  # on the LQ grid (s = 1: GT)
    try:
        width, height = image_size(os.path.join(cfg.lq, lq_rel) if cfg.lq and lq_rel else gt_path)
        outputs = [cfg.output] + ([cfg.lq_output] if cfg.lq_output else [])
        grid = crop_grid(height, width, crop, step, thresh)
        names = [sub_name(stem, i + 1) for i in range(len(grid))]
        if not grid:
            return ImageResult(gt_rel, 0, 0, f"{gt_path}: {width * s}x{height * s} is smaller than the crop "
                                             f"{cfg.crop_size}; skipped")
        todo = [i for i, name in enumerate(names) if not all(os.path.exists(os.path.join(o, name)) for o in outputs)]
        if not todo:
            return ImageResult(gt_rel, 0, len(names))
        gt = decode_file(gt_path, channels="stored")
        lq = decode_file(os.path.join(cfg.lq, lq_rel), channels="stored") if cfg.lq and lq_rel else None
        if lq is not None:
            mismatch = pair_scale_problem(gt_path, (gt.shape[2], gt.shape[1]), (lq.shape[2], lq.shape[1]), s)
            if mismatch:
                return ImageResult(gt_rel, 0, 0, mismatch + "; skipped")
        grid = crop_grid((lq if lq is not None else gt).shape[1], (lq if lq is not None else gt).shape[2],
                         crop, step, thresh)  # the decoded size (EXIF orientation applied)
        written = 0
        for i in todo:
            top, left = grid[i]
            if lq is not None and cfg.lq_output:
                lq_path = os.path.join(cfg.lq_output, names[i])
                if not os.path.exists(lq_path):
                    write_image(lq[:, top:top + crop, left:left + crop], lq_path, cfg.compression_level)
            gt_out = os.path.join(cfg.output, names[i])
            if not os.path.exists(gt_out):
                write_image(gt[:, top * s:(top + crop) * s, left * s:(left + crop) * s], gt_out,
                            cfg.compression_level)
                written += 1
        return ImageResult(gt_rel, written, len(names) - len(todo))
    except UserError as exc:
        return ImageResult(gt_rel, 0, 0, str(exc) + "; skipped")


def pairs_for(cfg: ExtractConfig, lq_tmpl: str) -> List[Tuple[str, Optional[str]]]:
    """(GT file, LQ file or None) per input image; an LQ folder must hold every GT image's LQ."""
    if not os.path.isdir(cfg.input):
        raise UserError(f"--input: folder '{cfg.input}' does not exist")
    gt_files = images_by_stem(cfg.input)
    if not gt_files:
        raise UserError(f"--input: no PNG/JPEG images in '{cfg.input}'")
    if not cfg.lq:
        return [(rel, None) for rel in gt_files.values()]
    if not os.path.isdir(cfg.lq):
        raise UserError(f"--lq: folder '{cfg.lq}' does not exist")
    lq_files = images_by_stem(cfg.lq)
    pairs: List[Tuple[str, Optional[str]]] = []
    missing = []
    for stem, rel in gt_files.items():
        lq_stem = os.path.join(os.path.dirname(stem), lq_tmpl.format(os.path.basename(stem)))
        if lq_stem in lq_files:
            pairs.append((rel, lq_files[lq_stem]))
        else:
            missing.append(rel)
    if missing:
        raise UserError(f"--lq: {len(missing)} GT image(s) without an LQ image named by --lq-tmpl '{lq_tmpl}' "
                        f"in '{cfg.lq}': {', '.join(missing[:5])}")
    return pairs


def _check(args: argparse.Namespace) -> None:
    if args.crop_size < 1 or args.step < 1 or args.thresh_size < 0:
        raise UserError("--crop-size and --step must be positive, --thresh-size at least 0")
    if bool(args.lq) != bool(args.lq_output):
        raise UserError("--lq and --lq-output go together (the LQ folder and where its crops go)")
    if args.lq and any(v % args.scale for v in (args.crop_size, args.step)):
        raise UserError(f"--crop-size {args.crop_size} and --step {args.step} must be multiples of --scale "
                        f"{args.scale}, so that the LQ crops sit at the same places")
    for inp, out, flag in ((args.input, args.output, "--output"), (args.lq, args.lq_output, "--lq-output")):
        problem = inp and out and check_output_folder(inp, out, flag)
        if problem:
            raise UserError(problem)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="extract_subimages.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="folder of (GT) images; sub-folders are kept")
    parser.add_argument("--output", required=True, help="folder for the sub-images")
    parser.add_argument("--crop-size", type=int, default=480, help="GT crop side (default: %(default)s)")
    parser.add_argument("--step", type=int, default=240, help="GT distance between crops (default: %(default)s)")
    parser.add_argument("--thresh-size", type=int, default=0,
                        help="no edge crop when at most this many pixels are left over (default: %(default)s)")
    parser.add_argument("--lq", help="folder of the LQ images to crop at the same places")
    parser.add_argument("--lq-output", help="folder for the LQ sub-images")
    parser.add_argument("--scale", type=int, default=4, help="with --lq: GT size / LQ size (default: %(default)s)")
    parser.add_argument("--lq-tmpl", default="{}",
                        help="LQ file name from the GT name, e.g. '{}x4' for DIV2K (default: %(default)s)")
    parser.add_argument("--compression-level", type=int, default=3, choices=range(10), metavar="0-9",
                        help="PNG zlib level (default: %(default)s, as BasicSR)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes (default: one per core, %(default)s)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    _check(args)
    cfg = ExtractConfig(args.input, args.output, args.crop_size, args.step, args.thresh_size,
                        args.compression_level, args.lq, args.lq_output, args.scale if args.lq else 1)
    pairs = pairs_for(cfg, args.lq_tmpl)
    for folder in (cfg.output, cfg.lq_output):
        if folder:
            os.makedirs(folder, exist_ok=True)
            remove_stale_temp_files(folder)
    written = existing = 0
    problems = []
    for result in run_jobs(functools.partial(extract_one, cfg=cfg), pairs, args.workers, "extract"):
        written += result.written
        existing += result.existing
        if result.problem:
            problems.append(result.problem)
            tqdm.write(result.problem)
    print(f"{cfg.output}: wrote {written} sub-images of {len(pairs)} images"
          + (f" ({existing} were already there)" if existing else "")
          + (f"; LQ crops in {cfg.lq_output}" if cfg.lq_output else ""))
    if problems:
        print(f"{len(problems)} image(s) skipped (see above)")
        return UserError.exit_code
    return 0
