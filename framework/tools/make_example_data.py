"""Write the synthetic example SR data set, so the default example run needs no download.

Usage (from the repository root, after ``pip install -e .``)::

    python scripts/make_example_data.py                 # -> datasets/example
    python scripts/make_example_data.py --scale 4 --root datasets/example_x4   # + val/LR_x4_degraded

With ``--scale 4`` (the Real-ESRGAN examples' scale), or ``--degraded-val`` at any scale, the set also has
``val/LR_x{scale}_degraded``: the val HR images through the Real-ESRGAN pipeline with its published keys
(what ``scripts/degrade_images.py -opt options/train/example_realesrnet.yml --seed <seed>`` writes), the
validation inputs of the Real-ESRGAN examples.
"""
from __future__ import annotations

import argparse
import time
from typing import List, Optional

from ..data.example_data import generate_example_data
from .args import add_verbose_argument


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="datasets/example", help="output folder (default: %(default)s)")
    parser.add_argument("--scale", type=int, default=2, help="downscaling factor of the LR images (default: 2)")
    parser.add_argument("--num-train", type=int, default=48, help="training image pairs (default: 48)")
    parser.add_argument("--num-val", type=int, default=8, help="validation image pairs (default: 8)")
    parser.add_argument("--size", type=int, default=128, help="HR image side in pixels (default: 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--degraded-val", action=argparse.BooleanOptionalAction, default=None,
                        help="also write val/LR_x{scale}_degraded, the Real-ESRGAN examples' validation inputs "
                             "(default: with --scale 4)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    degraded_val = args.scale == 4 if args.degraded_val is None else args.degraded_val

    start = time.perf_counter()
    info = generate_example_data(args.root, scale=args.scale, num_train=args.num_train, num_val=args.num_val,
                                 size=args.size, seed=args.seed, degraded_val=degraded_val)
    what = (f"{info['num_train']} train + {info['num_val']} val image pairs "
            f"({info['size']}px HR, LR_x{info['scale']}{' and degraded val LR' if degraded_val else ''}, "
            f"seed {info['seed']})")
    if info["generated"]:
        print(f"wrote {what} to {info['root']} in {time.perf_counter() - start:.1f}s")
    else:
        print(f"{info['root']} already holds {what}; nothing to do")
    return 0
