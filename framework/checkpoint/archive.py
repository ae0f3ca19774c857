"""The best model's copy in ``experiments/<name>/best_model/``, beside the record of why it is the best."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Mapping, Sequence

from .io import copy_writer, replace_together, text_writer

RECORDS = "best_records.json"


def archive_best(folder: str, weights_paths: Sequence[str], iteration: int, metric: str,
                 metrics: Mapping[str, float]) -> str:
    """Copy the new best weights files (``.pth`` and/or ``.safetensors``) into ``folder`` and add the record of
    why they are best to its history, all replaced together; returns the first copy."""
    os.makedirs(folder, exist_ok=True)
    targets = [os.path.join(folder, os.path.basename(path)) for path in weights_paths]
    names = [os.path.basename(target) for target in targets]
    entry = {"iteration": iteration, "metric": metric, "metrics": dict(metrics),
             "weights": names[0] if len(names) == 1 else names, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    record_path = os.path.join(folder, RECORDS)
    history = [*_history(record_path), entry]
    replace_together([*((target, copy_writer(path)) for path, target in zip(weights_paths, targets, strict=True)),
                      (record_path, text_writer(json.dumps({"best": entry, "history": history}, indent=2)))])
    return targets[0]


def _history(record_path: str) -> List[Dict[str, Any]]:
    if not os.path.exists(record_path):
        return []
    with open(record_path, encoding="utf-8") as fh:
        return list(json.load(fh).get("history", []))
