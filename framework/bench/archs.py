"""Every network preset: parameters, and training speed (the framework's own SRModel step: forward, L1 loss,
backward, Adam step) on one fixed random batch.

Usage (from the repository root)::

    python scripts/bench_archs.py                       # CPU: batch 2, 32x32 LR, x4, 1 warm-up + 3 timed steps
    python scripts/bench_archs.py --presets span,dat_2  # a subset
    python scripts/bench_archs.py --device cuda         # bf16 + channels_last, each preset at its usual training
                                                        # size (64x64 LR, batch 8; --lq / --batch change it)

Prints a markdown table: preset, class, parameters, median step time (ms) and iterations/s, and with CUDA the
peak memory. A preset that runs out of memory or fails says so in its row and the others go on; one that takes
longer than ``--time-limit`` seconds stops after the steps done by then (at least one timed step). The LR size
is rounded up to the preset's input multiple. Needs nothing but the repository.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Dict, List, Optional

import torch

from ..archs.presets import PRESETS
from ..errors import did_you_mean
from ..models.sr_model import SRModel
from .gpu import sr_model, sync


def build(preset: str, args: argparse.Namespace, device: torch.device) -> SRModel:
    speed = {"mixed_precision": "bf16", "channels_last": True} if device.type == "cuda" else {}
    return sr_model({"type": preset}, args.scale, 1000, speed, device)


def measure(preset: str, args: argparse.Namespace, device: torch.device) -> Dict[str, str]:
    """One preset's row; failures (out of memory included) become the row's note."""
    row = {"preset": preset, "class": PRESETS[preset][0]}
    model: Optional[SRModel] = None
    try:
        model = build(preset, args, device)
        row["parameters"] = f"{sum(p.numel() for p in model.net_g.parameters()) / 1e6:.2f}M"
        multiple = getattr(model.net_g, "input_multiple", 1)
        lq = -(-max(args.lq, getattr(model.net_g, "input_minimum", 1)) // multiple) * multiple
        generator = torch.Generator().manual_seed(0)
        batch = {"lq": torch.rand(args.batch, 3, lq, lq, generator=generator),
                 "gt": torch.rand(args.batch, 3, lq * args.scale, lq * args.scale, generator=generator)}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        times: List[float] = []
        for i in range(args.warmup + args.iters):
            sync(device)
            t0 = time.perf_counter()
            model.train_step(batch, i + 1)
            sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
            if times and time.perf_counter() - start > args.time_limit:
                break
        median = statistics.median(times)
        row.update(size=f"{args.batch}x{lq}x{lq}", ms=f"{median * 1000:.0f}", its=f"{1 / median:.2f}",
                   steps=str(len(times)))
        if device.type == "cuda":
            row["memory"] = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
    except torch.cuda.OutOfMemoryError:
        row["note"] = "out of memory"
    except (Exception, SystemExit) as exc:  # a failing preset is reported in its row; the others still run
        row["note"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:80] if str(exc).strip() else ''}"
    finally:
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--presets", default="", help="comma-separated preset names (default: all)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--lq", type=int, default=None, help="LR side (default: 32 on CPU, 64 on CUDA)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 2 on CPU, 8 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 1 on CPU, 5 on CUDA)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps (default: 3 on CPU, 20 on CUDA)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per preset (default 120)")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    args.lq = args.lq or (64 if cuda else 32)
    args.batch = args.batch or (8 if cuda else 2)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    args.iters = args.iters or (20 if cuda else 3)
    names = [n.strip() for n in args.presets.split(",") if n.strip()] or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        parser.error(f"--presets: unknown {', '.join(unknown)}{did_you_mean(unknown[0], PRESETS)}")
    device = torch.device(args.device)
    precision = "bf16 + channels_last" if cuda else "fp32"
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}, {precision}, x{args.scale}, median of {args.iters} steps after {args.warmup} warm-up\n")
    memory = " peak memory |" if cuda else ""
    print(f"| preset | class | parameters | batch x LR | ms/step | it/s |{memory} note |")
    print(f"|---|---|---|---|---|---|{'---|' if cuda else ''}---|")
    for preset in names:
        r = measure(preset, args, device)
        mem = f" {r.get('memory', '')} |" if cuda else ""
        print(f"| `{preset}` | {r['class']} | {r.get('parameters', '')} | {r.get('size', '')} | {r.get('ms', '')} "
              f"| {r.get('its', '')} |{mem} {r.get('note', '')} |", flush=True)
    return 0

