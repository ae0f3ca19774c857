"""Checkpoint pause: how long a save blocks the training loop, synchronous and asynchronous, against a raw
``torch.save`` + fsync of the same state.

``python scripts/bench_checkpoint.py`` (about 2 minutes on 2 cores, up to ~3.5 GB of RAM and 4 GB of disk at a
time). For each size (about 10 MB, 100 MB and 1 GB of full training state) it builds a real model state: a
stack of 3x3 convolutions as the network, its EMA copy, Adam's state after one step (``exp_avg``,
``exp_avg_sq``, ``step``) and a scheduler, laid out as ``BaseModel.state_dict`` groups it; the deploy weights
(``.pth``) are the EMA network. Then, interleaved, ``--repeats`` times each:

* raw: ``torch.save`` of the ``.pt`` content and of the ``.pth`` content into two files, flush + fsync each
  (what any trainer has to do to have both files on disk; no temp names, no renames);
* sync: ``CheckpointManager.after_step`` with ``async_save: false`` (collect, temp files, fsync, atomic
  renames, folder fsync), the time the loop is blocked;
* async: ``CheckpointManager.after_step`` with ``async_save: true``: the blocking part (collect, snapshot into
  the reused CPU buffers, start the writer); then, untimed by the loop, the background write completes.

Ratios: sync / raw (target <= 1.15) and async blocking / sync (target <= 0.15), medians of the repeats with
their spread. The first async save of each size also allocates its buffers and is reported apart. Files are
written to a temporary folder (``--dir`` to measure another file system) and deleted after each measurement.
``--profile`` adds a cProfile of one sync save and one async save point of the largest size.
"""
from __future__ import annotations

import argparse
import copy
import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from ..checkpoint.manager import CheckpointManager
from ..progress import BestRecord, TrainingProgress
from .common import spread

SIZES_MB = (10, 100, 1000)


class BenchModel:
    """A model state of about ``megabytes`` (network + EMA + Adam state = 4 floats per parameter)."""

    def __init__(self, megabytes: float, device: torch.device) -> None:
        params = int(megabytes * 2**20 / 16)
        channels = 64 if megabytes <= 20 else 128 if megabytes <= 200 else 256
        per_layer = channels * channels * 9 + channels
        layers = max(1, round(params / per_layer))
        torch.manual_seed(0)
        self.net = nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1) for _ in range(layers)]).to(device)
        self.ema = copy.deepcopy(self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-4, betas=(0.9, 0.99))
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones=[1000], gamma=0.5)
        for p in self.net.parameters():
            p.grad = torch.randn_like(p)
        self.optimizer.step()
        self.scheduler.step()
        for p in self.net.parameters():
            p.grad = None

    def state_dict(self) -> Dict[str, Any]:
        return {"networks": {"net_g": self.net.state_dict()}, "ema": {"net_g": self.ema.state_dict()},
                "optimizers": {"optim_g": self.optimizer.state_dict()},
                "schedulers": {"optim_g": self.scheduler.state_dict()}, "scalers": {}}

    def deploy_state_dict(self) -> Dict[str, torch.Tensor]:
        return self.ema.state_dict()

    def nbytes(self) -> int:
        total = 0
        for module in (self.net, self.ema):
            total += sum(t.numel() * t.element_size() for t in module.state_dict().values())
        for state in self.optimizer.state.values():
            total += sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))
        return total


def _fsynced_save(obj: Any, path: str) -> None:
    with open(path, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _clear(folder: str) -> None:
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))


class Bench:
    """The three ways of saving one model's state, each into a folder of its own."""

    def __init__(self, model: BenchModel, root: str) -> None:
        self.model = model
        self.progress = TrainingProgress(batch_size=16)
        self.options = {"name": "bench", "train": {"total_iter": 10**6}}
        self.folders = {kind: os.path.join(root, kind) for kind in ("raw", "sync", "async")}
        for folder in self.folders.values():
            os.makedirs(folder, exist_ok=True)
        self.managers = {kind: CheckpointManager(self.folders[kind], "bench", save_freq=1,
                                                 async_save=kind == "async") for kind in ("sync", "async")}
        for manager in self.managers.values():
            manager.track(model=model, progress=self.progress, best=BestRecord(), options=self.options)
        self.raw_manager = self.managers["sync"]  # collects the .pt content for the raw save

    def step(self) -> int:
        self.progress.step()
        return self.progress.iteration

    def raw(self) -> Dict[str, float]:
        iteration = self.step()
        start = time.perf_counter()
        state = self.raw_manager.collect()
        folder = self.folders["raw"]
        _fsynced_save(state, os.path.join(folder, f"bench_iter_{iteration}.pt"))
        _fsynced_save({"params": self.model.deploy_state_dict()}, os.path.join(folder, f"bench_iter_{iteration}.pth"))
        blocked = time.perf_counter() - start
        _clear(folder)
        return {"blocked": blocked}

    def sync(self) -> Dict[str, float]:
        iteration = self.step()
        start = time.perf_counter()
        self.managers["sync"].after_step(iteration)
        blocked = time.perf_counter() - start
        _clear(self.folders["sync"])
        return {"blocked": blocked}

    def async_point(self) -> None:
        """The blocking part of an asynchronous save alone (the write goes on in the background)."""
        self.managers["async"].after_step(self.step())

    def async_(self) -> Dict[str, float]:
        iteration = self.step()
        manager = self.managers["async"]
        start = time.perf_counter()
        manager.after_step(iteration)
        blocked = time.perf_counter() - start
        manager.finish()
        written = time.perf_counter() - start
        _clear(self.folders["async"])
        return {"blocked": blocked, "written": written}


def _profile(label: str, call: Callable[[], Any], top: int = 14) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"\ncProfile, {label} (cumulative seconds, top {top}):")
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print("\n".join(line for line in lines[start:] if line.strip()))


def measure(megabytes: float, device: torch.device, root: str, repeats: int) -> Dict[str, Any]:
    model = BenchModel(megabytes, device)
    bench = Bench(model, root)
    first_async = bench.async_()
    bench.raw()
    bench.sync()  # warm-up of the page cache and the file system for each kind
    runs: Dict[str, List[Dict[str, float]]] = {"raw": [], "sync": [], "async": []}
    kinds: Dict[str, Callable[[], Dict[str, float]]] = {"raw": bench.raw, "sync": bench.sync, "async": bench.async_}
    order = list(kinds)
    for rep in range(repeats):
        for kind in order[rep % 3:] + order[:rep % 3]:  # rotate the order: drift hits every kind
            runs[kind].append(kinds[kind]())
    return {"megabytes": model.nbytes() / 2**20, "runs": runs, "first_async": first_async, "bench": bench}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_checkpoint.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES_MB)),
                        help="state sizes in MB, comma-separated (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the state lives (default: %(default)s)")
    parser.add_argument("--dir", default=None, help="folder to write in (default: a temporary folder)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one sync save and one async save point of the largest size")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    root = tempfile.mkdtemp(prefix="bench_checkpoint_", dir=args.dir)
    print(f"torch {torch.__version__}, device {device}, writing in {root}; {args.repeats} interleaved repeats")
    rows = []
    try:
        for megabytes in sizes:
            began = time.perf_counter()
            result = measure(megabytes, device, os.path.join(root, f"{megabytes:g}"), args.repeats)
            rows.append(result)
            print(f"  {result['megabytes']:.0f} MB state: {time.perf_counter() - began:.0f} s", flush=True)
            if args.profile and megabytes == max(sizes):
                bench = result["bench"]
                _profile("sync save (after_step)", bench.sync)
                _profile("async save point (after_step, blocking part only)", bench.async_point)
                bench.managers["async"].finish()
                _clear(bench.folders["async"])
            del result["bench"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\nSeconds the training loop is blocked per save (median of the repeats [min..max]); raw = torch.save + "
          "fsync of the same .pt and .pth content.")
    print("async written: from the save point until the background write is complete; first async: the first "
          "save of the run (it allocates the buffers).\n")
    print("| state | raw s | sync s | async blocking s | sync / raw (<= 1.15) | async / sync (<= 0.15) | "
          "async written s | first async blocking s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        runs = row["runs"]
        raw = [r["blocked"] for r in runs["raw"]]
        sync = [r["blocked"] for r in runs["sync"]]
        blocked = [r["blocked"] for r in runs["async"]]
        written = [r["written"] for r in runs["async"]]
        sync_ratio = [s / r for s, r in zip(sync, raw, strict=True)]
        async_ratio = [a / s for a, s in zip(blocked, sync, strict=True)]
        print(f"| {row['megabytes']:.0f} MB | {spread(raw)} | {spread(sync)} | {spread(blocked)} | "
              f"{spread(sync_ratio)} | {spread(async_ratio)} | {spread(written)} | "
              f"{row['first_async']['blocked']:.3f} |")
    return 0
