"""Per-iteration cost of the framework's training loop against a bare PyTorch loop doing the same work.

Usage (from the repository root, no install needed; not part of the test suite)::

    python scripts/bench_overhead.py                  # workers 0 and 2, malloc as is: about 2 minutes, 2 cores
    python scripts/bench_overhead.py --malloc both    # and again with GLIBC_TUNABLES: about 4 minutes
    python scripts/bench_overhead.py --malloc all --workers 0   # plain, GLIBC_TUNABLES, the framework's mallopt
    python scripts/bench_overhead.py --workers 2 --threads 1,2  # torch threads beside 2 loader workers
    python scripts/bench_overhead.py --iters 100 --repeats 4 --workers 0 --threads 2 --json out.json

Both loops train the example network (MSRResNet, num_feat 32, num_block 4, x2, from ARCH_REGISTRY) on the
example data set (generated into a temporary folder), batch 16, GT crop 64, 10x enlarged epochs (30 batches),
Adam (lr 1e-3, betas 0.9/0.99) with the example's warm-up + cosine schedule, L1 loss, on the CPU with the same
torch thread count and DataLoader worker count.

* bare: a hand-written loop: a plain Dataset reading the PNG pairs with TorchCodec, random crop, flips
  and transposition with torch ops, a DataLoader (shuffle, drop_last, persistent workers), forward, backward,
  step.
* framework: the real ``framework.trainer.Trainer``, options from ``options/train/example.yml`` with
  ``--set``-style overrides (no validation, no TensorBoard, huge print and checkpoint intervals, temporary
  experiments and weights roots).

Each measurement timestamps the end of every optimizer step (for the trainer: the entry of its per-step
bookkeeping, ``Trainer._after_step``; the final checkpoint save comes after the last stamp) and reports the
median of the per-iteration intervals and the wall time from iteration ``--warmup`` to ``--iters``; process
start-up and the first iterations are excluded. The interval is split into the compute step (from the batch
in hand to the optimizer and scheduler step done) and the rest (waiting for data, loop plumbing).

Every variant (malloc setting x worker count) runs in its own fresh Python process, which alternates the two
loops (bare, framework, framework, bare, ...) ``--repeats`` times each, so drift from other processes on the
machine hits both; on Linux it also reports how much of the machine's CPU other processes took meanwhile.
The ``tuned`` malloc variant sets ``GLIBC_TUNABLES`` (docs/distributed-and-precision.md) for its process; the
``mallopt`` variant has the framework set the same thresholds from inside the process
(``framework.malloc.tune_malloc``, what train.py does by default) before anything else; ``plain`` leaves glibc's
defaults.
The ratio framework/bare is given per repeat pair, with the spread; timings on a shared machine are noisy.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .common import EXAMPLE_OPTIONS, REPO, spread


MALLOC_TUNED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
EXAMPLE_YML = Path(EXAMPLE_OPTIONS)
SCALE, GT_SIZE, BATCH, ENLARGE = 2, 64, 16, 10


# ------------------------------------------------------------------------------------------------ child side

def _cpu_snapshot() -> Optional[List[float]]:
    """[machine busy jiffies, jiffies of this process and its DataLoader workers, clock], Linux only; the
    difference of two snapshots tells how much of the machine other processes took in between."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
        pids = [str(os.getpid())]
        for children in glob.glob("/proc/self/task/*/children"):
            with open(children) as fh:
                pids += fh.read().split()
        own = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    stat = fh.read().rsplit(")", 1)[1].split()
                own += int(stat[11]) + int(stat[12])  # utime, stime (all threads)
            except OSError:
                pass
        return [busy, own, time.monotonic()]
    except (OSError, ValueError, IndexError):
        return None


def _others_share(before: Optional[List[float]], after: Optional[List[float]]) -> Optional[float]:
    """Fraction of all cores' time used by other processes between two snapshots."""
    if before is None or after is None:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    capacity = (after[2] - before[2]) * hz * (os.cpu_count() or 1)
    if capacity <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, others / capacity)


def _read_pair(gt_path: str, lq_path: str):
    from torchcodec.decoders import decode_image
    gt = decode_image(gt_path, mode="RGB").float().div_(255.0)
    lq = decode_image(lq_path, mode="RGB").float().div_(255.0)
    return gt, lq


def _bare_dataset(gt_dir: str, lq_dir: str):
    import torch
    from torch.utils.data import Dataset

    class BarePairs(Dataset):
        """PNG pairs by file name; random aligned crop, hflip, vflip, transpose (what BasicSR's augment does)."""

        def __init__(self) -> None:
            self.files = sorted(f for f in os.listdir(gt_dir) if f.endswith(".png"))

        def __len__(self) -> int:
            return len(self.files) * ENLARGE

        def __getitem__(self, i: int):
            name = self.files[i % len(self.files)]
            gt, lq = _read_pair(os.path.join(gt_dir, name), os.path.join(lq_dir, name))
            lq_size = GT_SIZE // SCALE
            _, h, w = lq.shape
            top = int(torch.randint(0, h - lq_size + 1, (1,)))
            left = int(torch.randint(0, w - lq_size + 1, (1,)))
            lq = lq[:, top:top + lq_size, left:left + lq_size]
            gt = gt[:, top * SCALE:(top + lq_size) * SCALE, left * SCALE:(left + lq_size) * SCALE]
            flips = torch.rand(3) < 0.5
            if flips[0]:
                lq, gt = lq.flip(-1), gt.flip(-1)
            if flips[1]:
                lq, gt = lq.flip(-2), gt.flip(-2)
            if flips[2]:
                lq, gt = lq.transpose(-1, -2), gt.transpose(-1, -2)
            return lq.contiguous(), gt.contiguous()

    return BarePairs()


def _example_lr_lambda(total: int = 600, warmup: int = 20, base: float = 1e-3, eta_min: float = 1e-5):
    """The example's schedule (linear warm-up, one cosine period to eta_min) as a LambdaLR factor."""
    import math

    def factor(steps: int) -> float:
        warm = min(1.0, (steps + 1) / warmup)
        lr = eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * min(steps, total) / total))
        return warm * lr / base
    return factor


def _network():
    import torch
    import framework.archs  # noqa: F401  (registers the networks)
    from framework.registry import ARCH_REGISTRY
    torch.manual_seed(0)
    return ARCH_REGISTRY.get("MSRResNet")(num_in_ch=3, num_out_ch=3, num_feat=32, num_block=4, upscale=SCALE)


def run_bare(spec: Dict[str, Any]) -> Dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    begin = time.perf_counter()
    torch.manual_seed(0)
    data = spec["data"]
    workers = spec["workers"]
    dataset = _bare_dataset(os.path.join(data, "train", "HR"), os.path.join(data, "train", f"LR_x{SCALE}"))
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=workers,
                        persistent_workers=workers > 0)
    net = _network()
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _example_lr_lambda())
    starts: List[float] = []
    ends: List[float] = []
    it, total, threads_seen = 0, spec["iters"], 0
    snaps: List[Optional[List[float]]] = []
    while it < total:
        for lq, gt in loader:
            starts.append(time.perf_counter())
            threads_seen = threads_seen or torch.get_num_threads()
            optimizer.zero_grad(set_to_none=True)
            loss = F.l1_loss(net(lq), gt)
            loss.backward()
            optimizer.step()
            scheduler.step()
            it += 1
            ends.append(time.perf_counter())
            if it in (spec["warmup"], total):
                snaps.append(_cpu_snapshot())
            if it >= total:
                break
    finish = time.perf_counter()  # like the trainer's: before the workers are shut down
    del loader
    gc.collect()
    return {"starts": starts, "ends": ends, "begin": begin, "finish": finish, "self_median_ms": None,
            "threads": threads_seen, "others": _others_share(*snaps)}


def run_framework(spec: Dict[str, Any], index: int) -> Dict[str, Any]:
    import torch
    from framework.checks import check_and_build
    from framework.options import load_options
    from framework.trainer import Trainer

    begin = time.perf_counter()
    data, out = spec["data"], spec["out"]
    name = f"bench_overhead_{spec['tag']}_{index}"
    overrides = [
        f"name={name}", "device=cpu", f"num_threads={spec['threads']}",
        f"datasets.train.dataroot_gt={data}/train/HR", f"datasets.train.dataroot_lq={data}/train/LR_x{SCALE}",
        f"datasets.train.num_worker_per_gpu={spec['workers']}",
        f"datasets.val.dataroot_gt={data}/val/HR", f"datasets.val.dataroot_lq={data}/val/LR_x{SCALE}",
        "val=null", f"train.total_iter={spec['iters']}",
        "logger.print_freq=1000000", "logger.save_checkpoint_freq=1000000", "logger.use_tb_logger=false",
        f"path.experiments_root={out}/experiments", f"path.weights_root={out}/weights",
    ]
    options = load_options(str(EXAMPLE_YML), overrides)
    trainer = Trainer(options, check_and_build(options), show_progress=False)
    starts: List[float] = []
    ends: List[float] = []
    threads_seen: List[int] = []
    snaps: List[Optional[List[float]]] = []
    after_step, train_step = trainer._after_step, trainer.model.train_step

    def timed_after_step(*args: Any, **kwargs: Any) -> Any:
        ends.append(time.perf_counter())
        if len(ends) in (spec["warmup"], spec["iters"]):
            snaps.append(_cpu_snapshot())
        return after_step(*args, **kwargs)

    def timed_train_step(batch: Any, iteration: int) -> Any:
        starts.append(time.perf_counter())
        if len(starts) == 1:
            threads_seen.append(torch.get_num_threads())
        return train_step(batch, iteration)

    # instance attributes: the classes are not edited
    trainer._after_step, trainer.model.train_step = timed_after_step, timed_train_step  # type: ignore
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer's console log lines
        trainer.run()
    finish = time.perf_counter()
    self_median = None
    for log in glob.glob(os.path.join(out, "experiments", name, "train_*.log")):
        with open(log, encoding="utf-8") as fh:
            found = re.findall(r"Median step time ([0-9.]+) ms", fh.read())
        if found:
            self_median = float(found[-1])
    del trainer
    gc.collect()
    return {"starts": starts, "ends": ends, "begin": begin, "finish": finish, "self_median_ms": self_median,
            "threads": threads_seen[0] if threads_seen else 0, "others": _others_share(*snaps)}


def sample_cost_us(spec: Dict[str, Any], rounds: int = 2, count: int = 96) -> Dict[str, float]:
    """Main-process cost of one training sample (read, crop, augment), plain Dataset vs the framework's."""
    import torch
    from framework.data.datasets import PairedImageDataset
    data = spec["data"]
    bare = _bare_dataset(os.path.join(data, "train", "HR"), os.path.join(data, "train", f"LR_x{SCALE}"))
    fw = PairedImageDataset(os.path.join(data, "train", "HR"), os.path.join(data, "train", f"LR_x{SCALE}"),
                            scale=SCALE, seed=0, train=True, gt_size=GT_SIZE)
    n = len(fw)
    out: Dict[str, List[float]] = {"bare": [], "framework": []}
    torch.manual_seed(0)
    for _ in range(rounds):
        for label, get in (("bare", lambda i: bare[i]), ("framework", lambda i: fw[(0, i % n)])):
            start = time.perf_counter()
            for i in range(count):
                get(i)
            out[label].append((time.perf_counter() - start) / count * 1e6)
    return {k: min(v) for k, v in out.items()}


def child_main(spec: Dict[str, Any]) -> None:
    malloc_line = ""
    if spec["malloc"] == "mallopt":
        from framework.malloc import tune_malloc
        malloc_line = tune_malloc()  # first thing: as train.py does, before the network and the data exist
    import torch
    torch.set_num_threads(spec["threads"])
    net = _network()  # untimed warm-up of the process (thread pool, kernels, allocator) before the first loop
    for _ in range(2):
        net(torch.rand(BATCH, 3, GT_SIZE // SCALE, GT_SIZE // SCALE)).mean().backward()
    del net
    results: Dict[str, List[Dict[str, Any]]] = {"bare": [], "framework": []}
    for rep in range(spec["repeats"]):
        order = ("bare", "framework") if rep % 2 == 0 else ("framework", "bare")
        for kind in order:
            if kind == "bare":
                results["bare"].append(run_bare(spec))
            else:
                results["framework"].append(run_framework(spec, rep))
            torch.set_num_threads(spec["threads"])  # the same count for every measurement
    payload = {"results": results, "threads": torch.get_num_threads(), "samples_us": sample_cost_us(spec),
               "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""), "malloc_line": malloc_line}
    print("BENCH_RESULT " + json.dumps(payload))


# ----------------------------------------------------------------------------------------------- parent side

def summarize(run: Dict[str, Any], warmup: int, iters: int) -> Dict[str, float]:
    ends, starts = run["ends"], run["starts"]
    if len(ends) < iters or len(starts) < iters:
        raise RuntimeError(f"expected {iters} iteration stamps, got {len(ends)} ends / {len(starts)} starts")
    # ends[k-1] is the end of iteration k; intervals of iterations warmup+1 .. iters
    intervals = [ends[k] - ends[k - 1] for k in range(warmup, iters)]
    compute = [ends[k] - starts[k] for k in range(warmup, iters)]
    between = [starts[k] - ends[k - 1] for k in range(warmup, iters)]
    return {
        "iter_ms": statistics.median(intervals) * 1e3,
        "wall_s": ends[iters - 1] - ends[warmup - 1],
        "compute_ms": statistics.median(compute) * 1e3,
        "between_ms": statistics.median(between) * 1e3,
        "between_sum_s": sum(between),
        "startup_s": starts[0] - run["begin"],
        "tail_s": run["finish"] - ends[iters - 1],
        "max_ms": max(intervals) * 1e3,
        "max_at": warmup + 1 + intervals.index(max(intervals)),
        "intervals_ms": [round(x * 1e3, 2) for x in intervals],
        "threads": run["threads"],
        "others": run["others"],
        "total_s": run["finish"] - run["begin"],
        "self_median_ms": run["self_median_ms"],
    }


def _others(rows: List[Dict[str, Any]]) -> str:
    shares = [r["others"] for r in rows if r["others"] is not None]
    return f"{max(shares) * 100:.0f}%" if shares else "n/a"


def default_threads() -> int:
    """What the trainer picks on CPU with ``num_threads: auto`` (framework.device.auto_threads)."""
    from framework.device import auto_threads
    return auto_threads()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=60, help="iterations per measurement (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="iterations left out at the start of each measurement (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="measurements of each loop per variant, alternated (default: %(default)s)")
    parser.add_argument("--workers", default="0,2",
                        help="comma-separated DataLoader worker counts (default: %(default)s)")
    parser.add_argument("--threads", default=None,
                        help="comma-separated torch thread counts for both loops, one variant each (default: the "
                             "trainer's own choice for the worker count)")
    parser.add_argument("--malloc", choices=("plain", "tuned", "mallopt", "both", "all"), default="plain",
                        help="glibc malloc settings: as is, GLIBC_TUNABLES (docs/distributed-and-precision.md), the "
                             "framework's mallopt (train.py's default), both = plain and tuned, all = the three "
                             "(default: %(default)s; tuned and mallopt need glibc)")
    parser.add_argument("--data-root", default=None,
                        help="an existing example data set (default: generate one in a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the raw figures to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        child_main(json.loads(args.child))
        return 0

    if args.warmup < 1 or args.iters <= args.warmup + 1:
        parser.error("need 1 <= --warmup < --iters - 1")
    workers_list = [int(w) for w in args.workers.split(",") if w.strip()]
    malloc = {"both": ["plain", "tuned"], "all": ["plain", "tuned", "mallopt"]}.get(args.malloc, [args.malloc])
    if platform.libc_ver()[0] != "glibc" and set(malloc) - {"plain"}:
        print("note: not a glibc system; the tuned and mallopt malloc variants are skipped", file=sys.stderr)
        malloc = [m for m in malloc if m == "plain"] or ["plain"]
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()] if args.threads else [None]

    began = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="bench_overhead_")
    try:
        if args.data_root:
            data = os.path.abspath(args.data_root)
        else:
            from framework.data.example_data import generate_example_data
            data = str(generate_example_data(os.path.join(tmp, "example"), scale=SCALE)["root"])
        print(f"torch threads: {args.threads or 'the trainer default'}; cores: {os.cpu_count()}; "
              f"{args.iters} iterations per measurement, stats over iterations {args.warmup}..{args.iters}; "
              f"{args.repeats} repeats of each loop per variant; data: {data}", flush=True)
        variants = []
        for mode, workers, threads in [(m, w, t) for m in malloc for w in workers_list for t in thread_counts]:
            threads = threads or default_threads()
            tag = f"{mode}_w{workers}_t{threads}"
            spec = {"data": data, "out": os.path.join(tmp, tag), "tag": tag, "workers": workers,
                    "threads": threads, "iters": args.iters, "warmup": args.warmup,
                    "repeats": args.repeats, "malloc": mode}
            env = dict(os.environ)
            if mode == "tuned":
                env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), MALLOC_TUNED]))
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "framework.bench.overhead", "--child", json.dumps(spec)],
                                  cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
            if proc.returncode != 0 or not lines:
                sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
                print(f"error: variant {tag} failed (exit {proc.returncode})", file=sys.stderr)
                return 1
            payload = json.loads(lines[-1][len("BENCH_RESULT "):])
            stats = {k: [summarize(r, args.warmup, args.iters) for r in v]
                     for k, v in payload["results"].items()}
            variants.append({"malloc": mode, "workers": workers, "threads": payload["threads"],
                             "stats": stats, "samples_us": payload["samples_us"]})
            print(f"  variant malloc={mode} workers={workers} threads={payload['threads']}: "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        report(variants, args)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"args": vars(args), "variants": variants}, fh, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"benchmark wall time {time.perf_counter() - began:.0f} s")
    return 0


def report(variants: List[Dict[str, Any]], args: argparse.Namespace) -> None:
    def med(rows: List[Dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print()
    print(f"Per-iteration time, iterations {args.warmup + 1}..{args.iters}: median ms/iter of each measurement, "
          "then the median of the repeats [min..max];")
    print("ratios are framework / bare per repeat pair (measured back to back), median [min..max]; others: the "
          "largest share of the machine's CPU")
    print("that other processes used during one of the variant's measurements (Linux; above ~10% the figures "
          "are disturbed).")
    header = (f"{'malloc':8} {'wk':>2} {'thr':>3} | {'bare ms/iter':>22} | {'framework ms/iter':>22} | "
              f"{'ratio ms/iter':>20} | {'ratio wall':>20} | {'others':>6}")
    print(header)
    print("-" * len(header))
    for v in variants:
        b, f = v["stats"]["bare"], v["stats"]["framework"]
        it_ratio = [fr["iter_ms"] / br["iter_ms"] for br, fr in zip(b, f, strict=False)]
        wall_ratio = [fr["wall_s"] / br["wall_s"] for br, fr in zip(b, f, strict=False)]
        print(f"{v['malloc']:8} {v['workers']:>2} {v['threads']:>3} | "
              f"{spread([r['iter_ms'] for r in b], '{:.1f}'):>22} | "
              f"{spread([r['iter_ms'] for r in f], '{:.1f}'):>22} | "
              f"{spread(it_ratio):>20} | {spread(wall_ratio):>20} | {_others(b + f):>6}")
    print()
    print("Where the time goes (medians of the repeats, bare/framework). compute: batch in hand -> optimizer and "
          "scheduler step done;")
    print("between: waiting for data + loop plumbing; wall: iterations "
          f"{args.warmup}..{args.iters}; startup: start of the measurement -> first step; end: last step -> "
          "return (the trainer's final checkpoint);")
    print("slowest: the longest single iteration of any repeat (a spike there, not a median shift, is what "
          "moves the wall ratio);")
    print("self-reported: the trainer's own logged median step time (all iterations, no bookkeeping); "
          "sample: main-process cost of one training sample.")
    header = (f"{'malloc':8} {'wk':>2} | {'compute ms':>15} {'ratio':>6} | {'between ms':>15} | {'wall s':>13} | "
              f"{'slowest ms':>13} | {'startup s':>11} | {'end s':>11} | {'self-rep ms':>11} | {'sample us':>13}")
    print(header)
    print("-" * len(header))
    for v in variants:
        b, f = v["stats"]["bare"], v["stats"]["framework"]
        self_rep = [r["self_median_ms"] for r in f if r["self_median_ms"] is not None]
        print(f"{v['malloc']:8} {v['workers']:>2} | "
              f"{med(b, 'compute_ms'):7.1f}/{med(f, 'compute_ms'):<7.1f} "
              f"{med(f, 'compute_ms') / med(b, 'compute_ms'):6.3f} | "
              f"{med(b, 'between_ms'):7.2f}/{med(f, 'between_ms'):<7.2f} | "
              f"{med(b, 'wall_s'):6.2f}/{med(f, 'wall_s'):<6.2f} | "
              f"{max(r['max_ms'] for r in b):6.0f}/{max(r['max_ms'] for r in f):<6.0f} | "
              f"{med(b, 'startup_s'):5.2f}/{med(f, 'startup_s'):<5.2f} | "
              f"{med(b, 'tail_s'):5.2f}/{med(f, 'tail_s'):<5.2f} | "
              f"{(statistics.median(self_rep) if self_rep else float('nan')):11.1f} | "
              f"{v['samples_us']['bare']:6.0f}/{v['samples_us']['framework']:<6.0f}")
        seen = {r["threads"] for r in b + f}
        if seen != {v["threads"]}:
            print(f"WARNING: torch thread counts at the first step differ from {v['threads']}: {sorted(seen)}")
    by_key = {(v["malloc"], v["workers"], v["threads"]): v for v in variants}
    for mode, label in (("tuned", "GLIBC_TUNABLES"), ("mallopt", "the framework's mallopt")):
        lines = []
        for (other, workers, threads), v in by_key.items():
            if other == mode and ("plain", workers, threads) in by_key:
                d = by_key[("plain", workers, threads)]
                for kind in ("bare", "framework"):
                    ratio = med(v["stats"][kind], "iter_ms") / med(d["stats"][kind], "iter_ms")
                    lines.append(f"workers {workers} threads {threads} {kind} {ratio:.3f}")
        if lines:
            print()
            print(f"malloc effect, median ms/iter with {label} / glibc's defaults: " + "; ".join(lines))
    lines = []
    for (mode, workers, threads), v in by_key.items():
        base = default_threads()
        if threads != base and (mode, workers, base) in by_key:
            d = by_key[(mode, workers, base)]
            for kind in ("bare", "framework"):
                ratio = med(v["stats"][kind], "iter_ms") / med(d["stats"][kind], "iter_ms")
                lines.append(f"malloc {mode} workers {workers} {kind} {ratio:.3f}")
            lines[-2] = f"{threads} threads / {base}: " + lines[-2]
    if lines:
        print()
        print("threads effect, median ms/iter: " + "; ".join(lines))
    print()
    print("Timings on a shared machine are noisy (other processes, and torch threads waiting on each other when "
          "the cores are oversubscribed):")
    print("trust a ratio only when its [min..max] is narrow; rerun with --repeats 4 otherwise.")


if __name__ == "__main__":  # each variant's child process: python -m framework.bench.overhead --child SPEC
    sys.exit(main())
