"""test.py: evaluate trained weights on every test set of an options file and print a metrics table.

Results go to ``results/<name>/`` (metrics.json, a log, images with ``val.save_img``); an earlier results
folder of the same name is moved aside, never overwritten.
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, List

import torch

from .data.build import build_dataset, build_val_loader, close_loader
from .data.degradations import bicubic_upsample
from .errors import UserError
from .options import Options
from .registry import MODEL_REGISTRY
from .run_folders import archive_previous_run
from .trainer import load_pretrained, select_device
from .validation import evaluate


def run_test(options: Options, out: Callable[[str], None] = print,
             dry_run: bool = False) -> Dict[str, Dict[str, float]]:
    """Metrics per test set (and the bicubic baseline for comparison when scale > 1)."""
    if not options.path.pretrain_path:
        raise UserError(f"{options.source_file}: path.pretrain_path: required by test.py (the weights to test)")
    if options.val is None or not options.val.metrics:
        raise UserError(f"{options.source_file}: val.metrics: required by test.py (which metrics to compute)")
    device = select_device(options)
    model = MODEL_REGISTRY.get(options.model_type)(options, device)
    messages: List[str] = []
    load_pretrained(model, options.path, messages.append)
    loaders = {phase: build_val_loader(options, phase, build_dataset(options, phase), device)
               for phase in options.datasets if phase != "train"}
    if not loaders:
        raise UserError(f"{options.source_file}: datasets: no test set (add datasets.test_1 with type and folders)")
    try:
        return _evaluate_all(options, model, loaders, messages, out, dry_run)
    finally:
        for loader in loaders.values():
            close_loader(loader)


def _evaluate_all(options: Options, model, loaders: Dict, messages: List[str], out: Callable[[str], None],
                  dry_run: bool) -> Dict[str, Dict[str, float]]:
    results_dir = os.path.join(options.path.results_root, options.name)
    if dry_run:
        for line in messages:
            out(line)
        for phase, loader in loaders.items():
            out(f"test set {options.datasets[phase].name}: {len(loader.dataset)} images")
        out(f"dry run: weights {options.path.pretrain_path} fit {options.network_g.type}; would write "
            f"{results_dir}/; nothing was written")
        return {}
    messages[:0] = archive_previous_run(results_dir, [])
    os.makedirs(results_dir)
    results: Dict[str, Dict[str, float]] = {}
    lines = list(messages)
    for phase, loader in loaders.items():
        name = options.datasets[phase].name
        save_dir = os.path.join(results_dir, "visualization", name) if options.val.save_img else None
        values = evaluate(model.inference, loader, options.val.metrics, save_dir)
        results[name] = values
        if options.scale > 1:
            results[f"{name} (bicubic)"] = evaluate(lambda lq: bicubic_upsample(lq, options.scale), loader,
                                                    options.val.metrics)
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
