"""test.py: evaluate trained weights on every test set of an options file and print a metrics table.

Results go to ``results/<name>/`` (metrics.json, a log, the per-image tables ``per_image_<set>.csv``, images
with ``val.save_img``); an earlier results
folder of the same name is moved aside, never overwritten.
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, List

import torch
from torch.utils.data import DataLoader

from . import per_image
from .checks import Built
from .data.build import build_val_loader, close_loader, num_samples
from .errors import UserError
from .logger import held_messages, held_startup_lines
from .models.base import Model, load_pretrained
from .options import Options
from .run_folders import archive_previous_run
from .validation import bicubic_baseline, evaluate, model_inference


def check_test_options(options: Options) -> None:
    """What test.py needs beyond training's options: weights to test and metrics to compute."""
    if not options.path.pretrain_path:
        raise UserError(f"{options.source_file}: path.pretrain_path: required by test.py (the weights to test)")
    if options.val is None or not options.val.metrics:
        raise UserError(f"{options.source_file}: val.metrics: required by test.py (which metrics to compute)")
    if not any(phase != "train" for phase in options.datasets):
        raise UserError(f"{options.source_file}: datasets: no test set (add datasets.test_1 with type and folders)")


def run_test(options: Options, built: Built, out: Callable[[str], None] = print,
             dry_run: bool = False) -> Dict[str, Dict[str, float]]:
    """Metrics per test set (and the bicubic baseline for comparison when scale > 1), for options that
    :func:`check_test_options` accepted (test.py checks them before building anything)."""
    with held_startup_lines() as held:
        load_pretrained(built.model, options.path)
        messages = held_messages(held)
    loaders = {phase: build_val_loader(options, phase, dataset, built.device)
               for phase, dataset in built.val_sets.items()}
    try:
        return _evaluate_all(options, built.model, loaders, messages, out, dry_run)
    finally:
        for loader in loaders.values():
            close_loader(loader)


def _evaluate_all(options: Options, model: Model, loaders: Dict[str, DataLoader], messages: List[str],
                  out: Callable[[str], None], dry_run: bool) -> Dict[str, Dict[str, float]]:
    results_dir = os.path.join(options.path.results_root, options.name)
    if dry_run:
        for line in messages:
            out(line)
        for phase, loader in loaders.items():
            out(f"test set {options.datasets[phase].name}: {num_samples(loader.dataset)} images")
        out(f"dry run: weights {options.path.pretrain_path} fit {options.network_g.type}; would write "
            f"{results_dir}/; nothing was written")
        return {}
    assert options.val is not None
    with held_startup_lines() as held:
        archive_previous_run(results_dir)
        lines = held_messages(held) + messages
    os.makedirs(results_dir)
    results: Dict[str, Dict[str, float]] = {}
    for phase, loader in loaders.items():
        name = options.datasets[phase].name
        save_dir = os.path.join(results_dir, "visualization", name) if options.val.save_img else None
        suffix = f"_{options.val.suffix}" if options.val.suffix else ""
        result = evaluate(model_inference(model, options.val, options.scale), loader, options.val.metrics, save_dir,
                          suffix=suffix)
        results[name] = result.averages
        bicubic: Dict[str, Dict[str, float]] = {}
        if options.scale > 1:
            baseline = bicubic_baseline(loader, options.val.metrics, options.scale)
            results[f"{name} (bicubic)"] = baseline.averages
            bicubic = baseline.by_name()
        per_image.write_table(per_image.table_path(results_dir, name),
                              per_image.image_rows(name, None, result.rows(), bicubic))
    lines += format_table(results, list(options.val.metrics))
    for line in lines:
        out(line)
    with open(os.path.join(results_dir, "metrics.json"), "w", encoding="utf-8") as fh:
        json.dump({"weights": options.path.pretrain_path, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "torch": str(torch.__version__), "results": results}, fh, indent=2)
    with open(os.path.join(results_dir, f"test_{options.name}.log"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return results


def format_table(results: Dict[str, Dict[str, float]], metrics: List[str]) -> List[str]:
    width = max([len("dataset")] + [len(k) for k in results])
    header = f"{'dataset':<{width}}  " + "  ".join(f"{m:>10}" for m in metrics)
    rows = [header, "-" * len(header)]
    for name, values in results.items():
        rows.append(f"{name:<{width}}  " + "  ".join(f"{values[m]:>10.4f}" for m in metrics))
    return rows
