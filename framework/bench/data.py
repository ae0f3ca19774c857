"""Data throughput on this machine: decoders, and the training loader on sub-image folders against LMDB.

``python scripts/bench_data.py --help``. Everything it reads it first generates in a temporary folder (2K
images drawn like the example set, saved as PNG and JPEG; sub-images and LR made with the framework's own
tools; an LMDB packed from them), so it downloads nothing and needs no data set. Timings are medians of
interleaved repeats: every repeat runs each candidate once, in turn, so load from other processes on the
machine spreads over all of them instead of hitting one.
"""
from __future__ import annotations

import argparse
import functools
import io
import os
import statistics
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..data.example_data import render_image
from ..data.image_io import encode_png, write_image
from .common import EXAMPLE_OPTIONS

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
        with warnings.catch_warnings():  # deprecated since 0.29: measured for comparison only
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


@functools.lru_cache(maxsize=4)
def _tiles(seed: int, tile: int) -> Tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(render_image(tile, 4, g) for _ in range(4))


def render_large(width: int, height: int, seed: int, tile: int = 512) -> torch.Tensor:
    """A uint8 (3, height, width) photo-sized image: example-set tiles (drawn once), flipped and rotated at
    random, with mild noise, so that PNG compresses it about as much as a photograph (DIV2K's 2K PNGs hold
    about 2 bytes per pixel)."""
    tiles = _tiles(0, tile)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(-(-height // tile)):
        row = []
        for _ in range(-(-width // tile)):
            t = tiles[int(torch.randint(len(tiles), (1,), generator=g))]
            t = torch.rot90(t, int(torch.randint(4, (1,), generator=g)), dims=(1, 2))
            row.append(t.flip(-1) if bool(torch.randint(2, (1,), generator=g)) else t)
        rows.append(torch.cat(row, dim=2))
    img = torch.cat(rows, dim=1)[:, :height, :width]
    img = img + torch.randn(img.shape, generator=g) * (2.0 / 255)
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
    from ..data.example_data import generate_example_data

    os.makedirs(folder, exist_ok=True)
    example = generate_example_data(os.path.join(folder, "example"), num_train=32, num_val=1, seed=seed)
    small = []
    for name in sorted(os.listdir(example["train_hr"])):
        with open(os.path.join(example["train_hr"], name), "rb") as fh:
            small.append(fh.read())
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


def make_training_sets(root: str, count: int, seed: int, workers: int) -> Dict[str, Dict[str, Any]]:
    """2K GT images and their x4 LR (scripts/generate_lr.py), sub-images of both (extract_subimages.py, 480
    step 240, as BasicSR's DIV2K preparation), and an LMDB of the sub-images (create_lmdb.py): dataset
    arguments per variant."""
    import contextlib

    from ..tools import create_lmdb, extract_subimages, generate_lr

    hr = os.path.join(root, "HR")
    for i in range(count):
        write_image(render_large(2040, 1356, seed + 100 + i), os.path.join(hr, f"{i:04d}.png"))
    quiet = ["--workers", str(workers)]
    with contextlib.redirect_stdout(io.StringIO()):
        generate_lr.main(["--input", hr, "--output", os.path.join(root, "LR_x4"), "--scale", "4", *quiet])
        extract_subimages.main(["--input", hr, "--output", os.path.join(root, "HR_sub"), "--lq",
                                os.path.join(root, "LR_x4"), "--lq-output", os.path.join(root, "LR_x4_sub"),
                                "--scale", "4", *quiet])
        create_lmdb.main(["--input", os.path.join(root, "HR_sub"), "--output", os.path.join(root, "HR_sub.lmdb"),
                          "--lq", os.path.join(root, "LR_x4_sub"), "--lq-output",
                          os.path.join(root, "LR_x4_sub.lmdb"), *quiet])
    return {
        "2K PNG folders": {"dataroot_gt": hr, "dataroot_lq": os.path.join(root, "LR_x4")},
        "sub-image folders": {"dataroot_gt": os.path.join(root, "HR_sub"),
                              "dataroot_lq": os.path.join(root, "LR_x4_sub")},
        "sub-image LMDB": {"dataroot_gt": os.path.join(root, "HR_sub.lmdb"),
                           "dataroot_lq": os.path.join(root, "LR_x4_sub.lmdb"), "io_backend": {"type": "lmdb"}},
    }


def loader_rates(variants: Dict[str, Dict[str, Any]], workers: int, batch: int, batches: int, repeats: int
                 ) -> Dict[str, float]:
    """Median samples/s of the training loader (PairedImageDataset, GT 256 crops, x4, flips and rotations) per
    variant, after two warm-up batches (worker start-up excluded), the repeats interleaved. The workers keep
    ``2 x workers`` batches ready: ``batches`` must be well above that to measure the steady rate."""
    from torch.utils.data import DataLoader

    from ..data.datasets import PairedImageDataset
    from ..data.sampler import ResumableSampler

    times: Dict[str, List[float]] = {name: [] for name in variants}
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # more workers than cores: meant
    for repeat in range(repeats):
        for name, args in variants.items():
            dataset = PairedImageDataset(scale=4, seed=repeat, train=True, gt_size=256, **args)
            sampler = ResumableSampler(len(dataset), seed=repeat, enlarge_ratio=100, shuffle=True)
            loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                                persistent_workers=False, prefetch_factor=2 if workers else None, drop_last=True)
            it = iter(loader)
            next(it)
            next(it)
            start = time.perf_counter()
            for _ in range(batches):
                next(it)
            times[name].append(batches * batch / (time.perf_counter() - start))
            del it
    return {name: statistics.median(v) for name, v in times.items()}


def example_data_wait(root: str, steps: int) -> Tuple[float, float, int]:
    """(median step ms, data wait share, workers) of the example run (options/train/example.yml, on this
    machine's device) over ``steps`` training steps: the time spent waiting for the next batch over the time
    of wait plus step."""
    from ..checks import check_and_build
    from ..data.build import build_train_loader
    from ..data.example_data import generate_example_data
    from ..options import load_options

    data = os.path.join(root, "example")
    generate_example_data(data)
    overrides = [f"datasets.train.dataroot_gt={data}/train/HR", f"datasets.train.dataroot_lq={data}/train/LR_x2",
                 f"datasets.val.dataroot_gt={data}/val/HR", f"datasets.val.dataroot_lq={data}/val/LR_x2",
                 f"path.experiments_root={root}/experiments", f"path.weights_root={root}/weights"]
    options = load_options(EXAMPLE_OPTIONS, overrides)
    built = check_and_build(options)
    from ..device import configure_threads

    configure_threads(options, built.device)
    loader, _sampler = build_train_loader(options, built.datasets["train"], built.device)
    waits, totals = [], []
    it = iter(loader)
    for step in range(steps + 5):
        start = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        got = time.perf_counter()
        built.model.train_step(batch, step + 1)
        if step >= 5:  # warm-up: first allocations, worker start-up
            waits.append(got - start)
            totals.append(time.perf_counter() - start)
    return statistics.median(totals) * 1000, sum(waits) / sum(totals), loader.num_workers


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_data.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8, help="2K images to generate (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default: %(default)s)")
    parser.add_argument("--decoders", nargs="*", help="limit to these decoders (default: all installed)")
    parser.add_argument("--workers", type=int, default=4, help="loader workers (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="loader batch size (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=40,
                        help="timed batches per repeat, well beyond the prefetched ones (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=60, help="example-run steps timed (default: %(default)s)")
    parser.add_argument("--names", type=int, default=100_000,
                        help="images of the set-up timing (empty PNGs; default: %(default)s; 0: skip)")
    parser.add_argument("--only", nargs="*", choices=["decode", "loader", "wait", "names"],
                        help="run only these parts (default: all)")
    parser.add_argument("--sources", nargs="*", choices=["2k", "folders", "lmdb"],
                        help="loader sources to time (default: all; 2k is by far the slowest)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    parts = set(args.only or ["decode", "loader", "wait", "names"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"torch {torch.__version__}, {cores} usable cores")
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        if "decode" in parts:
            files = make_decode_files(os.path.join(tmp, "decode"), min(args.images, 4), args.seed)
            decoders = available_decoders(args.decoders)
            sizes = {k: statistics.mean(len(b) for b in v) / 1e6 for k, v in files.items()}
            rates = decode_rates(files, decoders, args.repeats)
            same = check_identical(files, decoders) if "framework" in decoders else {}
            print(f"\nDecode speed, images/s on one thread (median of {args.repeats} interleaved repeats)\n")
            kinds = list(files)
            print("| decoder | " + " | ".join(f"{k} ({sizes[k]:.2f} MB)" for k in kinds) + " | PNG pixels |")
            print("|---|" + "---|" * (len(kinds) + 1))
            for name in decoders:
                print(f"| {name} | " + " | ".join(f"{rates[k][name]:.1f}" for k in kinds)
                      + f" | {same.get(name, '')} |")
        if "loader" in parts:
            variants = make_training_sets(os.path.join(tmp, "train"), args.images, args.seed, args.workers)
            chosen = dict(zip(["2k", "folders", "lmdb"], variants, strict=True))
            variants = {chosen[k]: variants[chosen[k]] for k in chosen if not args.sources or k in args.sources}
            rates2 = loader_rates(variants, args.workers, args.batch, args.batches, args.repeats)
            print(f"\nTraining loader, samples/s: PairedImageDataset x4, GT 256 crops, batch {args.batch}, "
                  f"{args.workers} workers, {args.images} 2K images (median of {args.repeats} interleaved "
                  "repeats)\n")
            print("| source | samples/s | batches/s |\n|---|---|---|")
            for name, rate in rates2.items():
                print(f"| {name} | {rate:.1f} | {rate / args.batch:.2f} |")
        if "wait" in parts:
            step_ms, share, workers = example_data_wait(os.path.join(tmp, "wait"), args.steps)
            print(f"\nExample run (options/train/example.yml, {workers} loader workers): median step "
                  f"{step_ms:.1f} ms, data wait {share * 100:.1f}% of the step time")
        if "names" in parts and args.names:
            figures = scale_figures(args.names, os.path.join(tmp, "names"))
            print(f"\nSetting up a paired set of {args.names} images (empty PNGs):")
            for what, seconds in figures.items():
                print(f"  {what}: {seconds:.2f} s")
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
