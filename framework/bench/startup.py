"""Start-up and resume latency: seconds from ``python train.py`` to the first batch in hand, fresh and resumed.

``python scripts/bench_startup.py`` (about a minute on 2 cores). It generates the example data set in a
temporary folder and runs the real ``train.py`` on ``options/train/example.yml`` (validation, bicubic baseline
and TensorBoard as in the example), ``--repeats`` rounds of:

* fresh: a new experiment (one of 1 iteration, one of ``--checkpoints`` iterations with a checkpoint at each);
* resumed: ``--auto-resume`` of the 1-iteration experiment (find, verify and load its checkpoint), 2 more steps;
* resumed among many: the same for the experiment with ``--checkpoints`` checkpoint pairs in the folder
  (auto-resume verifies the newest only, so this should cost what a plain resume costs).

Each figure is wall time measured by this script from starting the process to the trainer's
``Start-up: first batch in hand`` log line (so the interpreter's own start is included), with the trainer's own
figure beside it (counted from the framework's import). ``--profile`` runs one resumed start-up under cProfile
and prints where the time goes.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from .common import EXAMPLE_OPTIONS, REPO, spread

STARTUP_LINE = re.compile(r"Start-up: first batch in hand ([0-9.]+) s")


def _overrides(data: str, root: str, name: str, total: int) -> List[str]:
    pairs = {"name": name, "train.total_iter": total, "logger.save_checkpoint_freq": 1, "logger.print_freq": 1,
             "datasets.train.dataroot_gt": f"{data}/train/HR", "datasets.train.dataroot_lq": f"{data}/train/LR_x2",
             "datasets.val.dataroot_gt": f"{data}/val/HR", "datasets.val.dataroot_lq": f"{data}/val/LR_x2",
             "path.experiments_root": f"{root}/experiments", "path.weights_root": f"{root}/weights"}
    args: List[str] = []
    for key, value in pairs.items():
        args += ["--set", f"{key}={value}"]
    return args


def run_train(args: List[str], *, python: Optional[List[str]] = None) -> Tuple[float, float, str]:
    """(seconds from process start to the start-up line, the trainer's own figure, stdout) of one train.py."""
    command = [*(python or [sys.executable]), os.path.join(REPO, "train.py"),
               "-opt", EXAMPLE_OPTIONS, "--no-progress", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    seen: Optional[float] = None
    own = float("nan")
    lines = []
    for line in proc.stdout:
        lines.append(line)
        match = STARTUP_LINE.search(line)
        if match and seen is None:
            seen = time.perf_counter() - start
            own = float(match.group(1))
    _out, err = proc.communicate()
    if proc.returncode != 0 or seen is None:
        raise RuntimeError(f"train.py failed (exit {proc.returncode}):\n{''.join(lines)[-3000:]}\n{err[-3000:]}")
    return seen, own, "".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_startup.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default: %(default)s)")
    parser.add_argument("--checkpoints", type=int, default=30,
                        help="checkpoint pairs in the folder for 'resumed among many' (default: %(default)s)")
    parser.add_argument("--profile", action="store_true", help="also profile one resumed start-up")
    args = parser.parse_args(argv)
    from ..data.example_data import generate_example_data

    root = tempfile.mkdtemp(prefix="bench_startup_")
    figures: Dict[str, List[Tuple[float, float]]] = {"fresh": [], "resumed": [], "resumed among many": []}
    try:
        data = os.path.join(root, "example")
        generate_example_data(data)
        weights = os.path.join(root, "weights")
        for rep in range(args.repeats):
            one, many = f"startup_one_{rep}", f"startup_many_{rep}"
            seen, own, _ = run_train(_overrides(data, root, one, 1))
            figures["fresh"].append((seen, own))
            seen, own, out = run_train(_overrides(data, root, one, 3) + ["--auto-resume"])
            assert f"Resumed from {weights}/{one}_iter_1.pt" in out, out[-2000:]
            figures["resumed"].append((seen, own))
            seen, own, _ = run_train(_overrides(data, root, many, args.checkpoints))  # a checkpoint every step
            figures["fresh"].append((seen, own))
            seen, own, out = run_train(_overrides(data, root, many, args.checkpoints + 2) + ["--auto-resume"])
            assert f"Resumed from {weights}/{many}_iter_{args.checkpoints}.pt" in out, out[-2000:]
            figures["resumed among many"].append((seen, own))
            print(f"  round {rep + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in figures.items()),
                  flush=True)
        if args.profile:
            stats = os.path.join(root, "resume.prof")
            run_train(_overrides(data, root, "startup_one_0", 5) + ["--auto-resume"],
                      python=[sys.executable, "-m", "cProfile", "-o", stats])
            import pstats

            print("\ncProfile of a resumed start-up (and its 2 steps), cumulative seconds, top 25:")
            pstats.Stats(stats).sort_stats("cumulative").print_stats(25)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\nSeconds from starting `python train.py` (example options) to the first batch in hand, median of "
          f"{args.repeats} rounds [min..max]; in brackets the trainer's own figure (from the framework's import):\n")
    print("| start | seconds | trainer's own | / fresh |\n|---|---|---|---|")
    fresh = statistics.median(s for s, _ in figures["fresh"])
    for kind, values in figures.items():
        walls = [wall for wall, _ in values]
        owns = [own for _, own in values]
        label = kind if kind != "resumed among many" else f"resumed among {args.checkpoints} checkpoints"
        print(f"| {label} | {spread(walls, '{:.2f}')} | "
              f"{statistics.median(owns):.2f} | {statistics.median(walls) / fresh:.3f} |")
    return 0
