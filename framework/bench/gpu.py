"""Training speed on one CUDA device in fp32, bf16 + channels_last, and bf16 + channels_last + torch.compile.

Usage (from the repository root)::

    python scripts/bench_gpu.py                  # ESRGAN-sized: RRDBNet 64 features, 23 blocks, x4, 128x128 GT
                                                 # crops, batch 16; 10 warm-up + 50 timed iterations each
    python scripts/bench_gpu.py --iters 100 --json bench.json
    python scripts/bench_gpu.py --smoke          # tiny sizes on the CPU: checks the script runs, measures nothing

Each configuration builds the framework's own SRModel from train options (``mixed_precision``,
``channels_last``, ``compile``), so what is timed is the framework's training step (forward, L1 loss,
backward, Adam step, scheduler), on one fixed random batch already on the device (the data pipeline is
not part of it). The warm-up iterations (which include compilation) are excluded; the timed iterations end
with a device synchronisation. It prints iterations/s, the peak memory, and each configuration's speed-up
over fp32. Target: bf16 + channels_last at least 2x fp32.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional

import torch

from ..checks import compile_unavailable
from ..models.sr_model import SRModel
from ..options import validate
from ..schema import format_problems

CONFIGS = [
    ("fp32", {}),
    ("bf16 + channels_last", {"mixed_precision": "bf16", "channels_last": True}),
    ("bf16 + channels_last + compile", {"mixed_precision": "bf16", "channels_last": True, "compile": True}),
]


def build_model(args: argparse.Namespace, speed: Dict[str, Any], device: torch.device) -> SRModel:
    network = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": args.num_feat,
               "num_block": args.num_block, "num_grow_ch": 32}
    return sr_model(network, 4, args.warmup + args.iters, speed, device)


def sr_model(network_g: Dict[str, Any], scale: int, total_iter: int, speed: Dict[str, Any],
             device: torch.device) -> SRModel:
    """The framework's SRModel for ``network_g`` (L1 loss, Adam), built from validated options; a problem
    with them raises SystemExit with the one-line messages (also used by bench_archs.py)."""
    raw = {"name": "bench", "scale": scale, "manual_seed": 0, "network_g": network_g,
           "train": {"total_iter": total_iter, "optim_g": {"type": "Adam", "lr": 1e-4},
                     "pixel_opt": {"type": "L1Loss"}, **speed}}
    problems: list = []
    options = validate(raw, problems, require_train=False)
    if options is None or problems:
        raise SystemExit(format_problems(problems, None))
    torch.manual_seed(0)
    return SRModel(options, device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(args: argparse.Namespace, name: str, speed: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    if speed.get("compile"):
        reason = compile_unavailable(device)
        if reason:
            return {"config": name, "skipped": reason}
    model = build_model(args, speed, device)
    lq_size = args.gt_size // 4
    gen = torch.Generator().manual_seed(0)
    batch = {"lq": torch.rand(args.batch, 3, lq_size, lq_size, generator=gen).to(device),
             "gt": torch.rand(args.batch, 3, args.gt_size, args.gt_size, generator=gen).to(device)}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for i in range(args.warmup):
        model.train_step(batch, i + 1)
    sync(device)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(args.iters):
        losses = model.train_step(batch, args.warmup + i + 1)
    float(losses["l_pix"])
    sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"config": name, "it_per_s": args.iters / elapsed, "warmup_s": warmup_s, "peak_gib": peak,
            "final_l_pix": float(losses["l_pix"])}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=50, help="timed iterations per configuration")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first (compilation)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--gt-size", type=int, default=128)
    parser.add_argument("--num-feat", type=int, default=64)
    parser.add_argument("--num-block", type=int, default=23)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on the CPU (8 features, 1 block, GT 32, batch 2, 2+2 iterations): checks "
                             "that the script runs where there is no GPU; its figures mean nothing")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the compiled configuration")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.iters, args.warmup, args.batch, args.gt_size, args.num_feat, args.num_block = 2, 2, 2, 32, 8, 1
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("no CUDA device: this benchmark measures GPU speed (use --smoke for a CPU check of the script)",
              file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke test: not a measurement)"
    print(f"torch {torch.__version__}, {where}; RRDBNet num_feat {args.num_feat}, num_block {args.num_block}, x4, "
          f"GT {args.gt_size}x{args.gt_size}, batch {args.batch}; {args.warmup} warm-up + {args.iters} timed "
          "iterations")
    results: List[Dict[str, Any]] = []
    for name, speed in CONFIGS:
        if args.skip_compile and speed.get("compile"):
            continue
        result = measure(args, name, speed, device)
        results.append(result)
        if "skipped" in result:
            print(f"{name:32s} skipped: {result['skipped']}")
            continue
        ratio = result["it_per_s"] / results[0]["it_per_s"]
        result["speedup_vs_fp32"] = ratio
        print(f"{name:32s} {result['it_per_s']:8.2f} it/s  x{ratio:5.2f} vs fp32  peak {result['peak_gib']:.1f} GiB  "
              f"(warm-up {result['warmup_s']:.1f} s)", flush=True)
    bf16 = next((r for r in results if r["config"] == "bf16 + channels_last" and "it_per_s" in r), None)
    if bf16 is not None and not args.smoke:
        verdict = "meets" if bf16["speedup_vs_fp32"] >= 2.0 else "MISSES"
        print(f"bf16 + channels_last is x{bf16['speedup_vs_fp32']:.2f} fp32: {verdict} the 2x target")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"device": where, "torch": torch.__version__, "args": vars(args), "results": results}, fh,
                      indent=2)
    return 0

