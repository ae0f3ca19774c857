"""Upscale images with trained or published weights: an image or a folder in, upscaled PNGs out.

    python scripts/inference.py -i photos/ -o results/photos_x4 -w weights/x_best.pth -opt options/train/x.yml
    python scripts/inference.py -i big.jpg -o big_x4.png -w RealESRGAN_x4plus.pth --arch RRDBNet --tile 512
    python scripts/inference.py -i photos/ -w weights/x_iter_5000.pt        # a .pt knows its network

Outputs are PNG with the input's channels (gray, gray + alpha, RGB, RGBA) and bit depth (8 or 16); a folder's
sub-folders are kept. Nothing is overwritten without ``--force``; an image that cannot be read or upscaled is
reported and skipped, and the exit code is then 2. Exit codes: 0 success, 2 a user error or a failed image,
1 an unexpected failure (with traceback).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
from tqdm import tqdm

from ..data.image_io import decode_file, list_images, write_image
from ..errors import UserError
from ..inference import ALPHA_MODES, PRECISIONS, Upscaler, load_network, select_device
from ..logger import console_logging
from .args import add_network_source, add_verbose_argument

logger = logging.getLogger(__name__)

Job = Tuple[str, str]  # input image, output PNG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inference.py", description="Upscale an image or a folder of images "
                                     "with trained or published weights; writes PNG.")
    parser.add_argument("-i", "--input", required=True, metavar="PATH",
                        help="an image (PNG/JPEG), or a folder of them (sub-folders included)")
    parser.add_argument("-o", "--output", default="results/inference", metavar="PATH",
                        help="output folder (default: results/inference), or a .png file name for one input image")
    parser.add_argument("-w", "--weights", metavar="FILE",
                        help="a .pth (params, params_ema, both, or a bare state dict) or a .pt; default: "
                             "path.pretrain_path of -opt")
    add_network_source(parser, default="; without -opt or --arch, a .pt's saved options")
    parser.add_argument("--param-key", metavar="KEY",
                        help="entry of the .pth to use (default: params_ema when present, else params, else the only "
                             "one); for a .pt, 'params' takes the raw network instead of its EMA weights")
    parser.add_argument("--tile", type=int, default=0, metavar="N",
                        help="upscale in tiles of N x N input pixels, for images that do not fit in memory "
                             "(0, the default: whole images)")
    parser.add_argument("--tile-pad", type=int, default=32, metavar="N",
                        help="pixels of context around each tile, cut off afterwards (default 32)")
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="tiles per forward pass (default 1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto (default): CUDA when available")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                        help="fp32 (default); fp16 (CUDA only) or bf16: half the memory, faster on GPUs")
    parser.add_argument("--channels-last", action="store_true",
                        help="channels-last memory format (faster convolutions on recent GPUs)")
    parser.add_argument("--alpha", choices=ALPHA_MODES, default="network",
                        help="alpha channel: upscaled by the network like a gray image (default) or bicubic resize")
    parser.add_argument("--suffix", default="", metavar="TEXT",
                        help="added to each output file name before .png (e.g. _x4)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_verbose_argument(parser)
    return parser


def plan(source: str, output: str, suffix: str = "", force: bool = False) -> List[Job]:
    """Every (input, output) pair, checked before anything is computed or written: outputs that exist
    (without ``force``), that would replace an input, or that two inputs would share."""
    if os.path.splitext(output)[1].lower() in (".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
        raise UserError(f"-o {output}: outputs are PNG; name the file .png, or give a folder")
    if os.path.isfile(source):
        out = output if output.lower().endswith(".png") else os.path.join(
            output, os.path.splitext(os.path.basename(source))[0] + suffix + ".png")
        jobs = [(source, out)]
    elif os.path.isdir(source):
        if output.lower().endswith(".png"):
            raise UserError(f"-o {output}: the input is a folder; give an output folder")
        inside = os.path.commonpath([os.path.abspath(output), os.path.abspath(source)]) == os.path.abspath(source)
        if inside:
            raise UserError(f"-o {output}: is inside the input folder {source}, where a later run would take the "
                            "outputs for inputs; choose a folder outside it")
        names = list_images(source)
        if not names:
            raise UserError(f"-i {source}: no PNG or JPEG images in this folder")
        jobs = [(os.path.join(source, rel), os.path.join(output, os.path.splitext(rel)[0] + suffix + ".png"))
                for rel in names]
    else:
        raise UserError(f"-i {source}: no such file or folder")
    seen: Dict[str, str] = {}
    for src, dst in jobs:
        if os.path.exists(dst) and os.path.samefile(src, dst):
            raise UserError(f"{dst}: the output would replace its input; choose another -o or --suffix")
        if dst in seen:
            raise UserError(f"{seen[dst]} and {src}: both would be written to {dst}; rename one")
        seen[dst] = src
    existing = [dst for _, dst in jobs if os.path.exists(dst)]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]}: exists{more}; pass --force to overwrite, or choose another -o")
    if any(os.path.isdir(dst) for dst in existing):
        raise UserError(f"{next(d for d in existing if os.path.isdir(d))}: is a folder; it cannot be an output image")
    return jobs


def write_png_file(img: torch.Tensor, path: str) -> None:
    """Write under a temporary name, then rename: an interrupted run leaves no half-written image."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp.{os.getpid()}")
    try:
        write_image(img, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _tile_progress(enabled: bool) -> Tuple[Callable[[int, int], None], Callable[[], None]]:
    """A second bar, over the forward passes of one image's tiles, when it has several (``update(done, total)``
    restarts it for the alpha channel's passes)."""
    bar: List[tqdm] = []

    def update(done: int, total: int) -> None:
        if not enabled or total <= 1:
            return
        if not bar:
            bar.append(tqdm(total=total, desc="tiles", unit="pass", leave=False, file=sys.stdout,
                            dynamic_ncols=True, disable=None))
        elif done <= bar[0].n:  # the next run over the same image (its alpha channel)
            bar[0].reset(total=total)
        bar[0].update(done - bar[0].n)

    def close() -> None:
        while bar:
            bar.pop().close()

    return update, close


def main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    jobs = plan(args.input, args.output, args.suffix, args.force)
    with console_logging():
        network = load_network(args.weights, options_file=args.opt, arch=args.arch or (), param_key=args.param_key)
        device = select_device(args.device)
        upscaler = Upscaler(network, device, precision=args.precision, channels_last=args.channels_last,
                            tile=args.tile, tile_pad=args.tile_pad, batch=args.batch)
        tiles = f"tiles of {upscaler.tile} + {upscaler.tile_pad} px, {args.batch} per pass" if args.tile else "no tiles"
        logger.info(f"Network: {network.describe()} from {network.source}, {network.parameters():,} parameters; "
                    f"{device.type}, {args.precision}{', channels-last' if args.channels_last else ''}, {tiles}; "
                    f"alpha by {args.alpha}")
        logger.info(f"{len(jobs)} image(s) from {args.input} to {args.output}")
        disable = True if args.no_progress else None  # None: bars only on a terminal
        failed = []
        start = time.perf_counter()
        tile_update, tile_close = _tile_progress(not args.no_progress)
        for src, dst in tqdm(jobs, desc="images", unit="img", disable=disable, file=sys.stdout, dynamic_ncols=True):
            try:
                out = upscaler.image(decode_file(src, channels="stored"), alpha=args.alpha, progress=tile_update)
            except UserError as exc:
                failed.append(src)
                logger.error(f"skipped {exc}" if str(exc).startswith(src) else f"skipped {src}: {exc}")
                continue
            except (torch.OutOfMemoryError, MemoryError):
                failed.append(src)
                logger.error(f"skipped {src}: out of memory; use --tile (e.g. --tile 256), a smaller --batch, or "
                             "--precision fp16 / bf16")
                continue
            finally:
                tile_close()
            write_png_file(out, dst)
        done = len(jobs) - len(failed)
        logger.info(f"Wrote {done} image(s) to {args.output} in {time.perf_counter() - start:.1f} s")
    if failed:
        shown = ", ".join(failed[:5]) + (f", ... ({len(failed) - 5} more)" if len(failed) > 5 else "")
        raise UserError(f"{len(failed)} of {len(jobs)} image(s) failed and were skipped (see above): {shown}")
    return 0
