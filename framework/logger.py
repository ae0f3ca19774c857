"""What a run tells the user: text log, progress bar, TensorBoard, and the archive of best models.

Everything lands in ``experiments/<name>/``. The logger writes; it does not decide what is best or when to
save (the trainer does), and it knows nothing about checkpoint formats beyond copying a finished file.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from typing import Dict, Mapping, Optional

import torch
from tqdm import tqdm


class _TqdmHandler(logging.Handler):
    """Console lines that do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stdout)


class ExperimentLogger:
    """Text log + console, a tqdm bar, TensorBoard scalars/images, and the best-model archive."""

    def __init__(self, exp_dir: str, name: str, *, use_tb: bool, resume_iter: int = 0,
                 show_progress: bool = True) -> None:
        self.exp_dir = exp_dir
        self.name = name
        os.makedirs(exp_dir, exist_ok=True)
        self.log_path = os.path.join(exp_dir, f"train_{name}_{time.strftime('%Y%m%d_%H%M%S')}.log")
        self._logger = logging.getLogger(f"framework.{name}.{id(self)}")
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False
        file_handler = logging.FileHandler(self.log_path, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
        console = _TqdmHandler()
        console.setFormatter(logging.Formatter("%(message)s"))
        self._logger.addHandler(file_handler)
        self._logger.addHandler(console)
        self._tb = None
        if use_tb:
            from torch.utils.tensorboard import SummaryWriter
            # purge_step drops events a previous run wrote after the checkpoint we resume from.
            self._tb = SummaryWriter(os.path.join(exp_dir, "tb_logger"),
                                     purge_step=resume_iter + 1 if resume_iter else None)
        self._bar: Optional[tqdm] = None
        self.show_progress = show_progress

    # text
    def info(self, message: str) -> None:
        self._logger.info(message)

    def warning(self, message: str) -> None:
        self._logger.warning(message)

    # progress
    def start_progress(self, total: int, initial: int) -> None:
        # disable=None: no bar when stdout is not a terminal (CI logs, nohup), where it would only add noise.
        self._bar = tqdm(total=total, initial=initial, desc=self.name, unit="it", dynamic_ncols=True,
                         disable=None if self.show_progress else True, file=sys.stdout, smoothing=0.1)

    def advance(self, iteration: int, postfix: Optional[Mapping[str, str]] = None) -> None:
        if self._bar is None:
            return
        self._bar.update(iteration - self._bar.n)
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)

    # tensorboard
    def scalars(self, values: Mapping[str, float], iteration: int) -> None:
        if self._tb is not None:
            for tag, value in values.items():
                self._tb.add_scalar(tag, value, iteration)

    def image(self, tag: str, img_uint8: torch.Tensor, iteration: int) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, img_uint8, iteration, dataformats="CHW")

    # best-model archive
    def archive_best(self, weights_path: str, iteration: int, metrics: Mapping[str, float],
                     metric: str) -> str:
        """Copy the new best weights into ``experiments/<name>/best_model/`` and record why it is best."""
        folder = os.path.join(self.exp_dir, "best_model")
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, os.path.basename(weights_path))
        tmp = target + ".tmp"
        shutil.copyfile(weights_path, tmp)
        os.replace(tmp, target)
        record_path = os.path.join(folder, "best_records.json")
        history = []
        if os.path.exists(record_path):
            with open(record_path, encoding="utf-8") as fh:
                history = json.load(fh).get("history", [])
        entry = {"iteration": iteration, "metric": metric, "metrics": dict(metrics),
                 "weights": os.path.basename(target), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        history.append(entry)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"best": entry, "history": history}, fh, indent=2)
        os.replace(tmp, record_path)
        return target

    def end_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self.end_progress()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        for handler in list(self._logger.handlers):
            handler.close()
            self._logger.removeHandler(handler)


def format_metrics(values: Dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items())
