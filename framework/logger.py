"""What a run tells the user: text log, progress bar, TensorBoard (and Weights & Biases, in its own module),
and the per-image result tables.

Modules log through the standard library (``logging.getLogger(__name__)``, all under the ``framework``
logger). Lines logged before the experiment log exists (start-up: checks, resume, baselines) are held by a
standard buffering handler (:func:`held_startup_lines`) and replayed into the log once it is open.
Everything lands in ``experiments/<name>/``. The logger writes; it does not decide what is best or when to
save, and it knows nothing about checkpoints (the checkpoint manager archives the best model).
"""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from logging.handlers import MemoryHandler
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence

import torch
from tqdm import tqdm

from .per_image import Row, append_rows, drop_after, table_path

if TYPE_CHECKING:
    from .options import WandbOptions

FRAMEWORK_LOGGER = logging.getLogger("framework")
FRAMEWORK_LOGGER.setLevel(logging.INFO)
FRAMEWORK_LOGGER.propagate = False  # our handlers show every line once, whatever the root logger does


class _ConsoleFormatter(logging.Formatter):
    """The message alone; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"{record.levelname}: {message}" if record.levelno >= logging.WARNING else message


@contextmanager
def held_startup_lines() -> Iterator[MemoryHandler]:
    """Hold the lines logged until the experiment log exists (see :meth:`ExperimentLogger.replay`). If
    start-up fails instead, the held warnings go to stderr before the error (its "see above", e.g. why each
    checkpoint was skipped); the information lines of a run that did not start are dropped."""
    held = MemoryHandler(capacity=1 << 30, flushLevel=logging.CRITICAL + 1)  # never flushes by itself
    FRAMEWORK_LOGGER.addHandler(held)
    try:
        yield held
    except BaseException:
        held.buffer[:] = [record for record in held.buffer if record.levelno >= logging.WARNING]
        for line in held_messages(held):
            print(line, file=sys.stderr)
        raise
    finally:
        FRAMEWORK_LOGGER.removeHandler(held)
        held.close()


def held_messages(held: MemoryHandler) -> List[str]:
    """The held lines as the console shows them (and no longer held)."""
    FRAMEWORK_LOGGER.removeHandler(held)
    formatter = _ConsoleFormatter()
    lines = [formatter.format(record) for record in held.buffer]
    held.buffer.clear()
    return lines


class _TqdmHandler(logging.Handler):
    """Console lines that do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stdout)


@contextmanager
def console_logging() -> Iterator[None]:
    """The framework's log lines on the console (between progress bars) for tools that keep no log file."""
    console = _TqdmHandler()
    console.setFormatter(_ConsoleFormatter())
    FRAMEWORK_LOGGER.addHandler(console)
    try:
        yield
    finally:
        FRAMEWORK_LOGGER.removeHandler(console)


class Board(Protocol):
    """Where scalars and images go: TensorBoard, W&B."""

    def scalars(self, values: Mapping[str, float], iteration: int) -> None: ...

    def image(self, tag: str, img_uint8: torch.Tensor, iteration: int) -> None: ...

    def close(self) -> None: ...


class TensorBoard:
    """Event files in ``folder``; on resume, the events a previous run wrote after the checkpoint are dropped
    (``purge_step``)."""

    def __init__(self, folder: str, resume_iter: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(folder, purge_step=resume_iter + 1 if resume_iter else None)

    def scalars(self, values: Mapping[str, float], iteration: int) -> None:
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, iteration)

    def image(self, tag: str, img_uint8: torch.Tensor, iteration: int) -> None:
        self._writer.add_image(tag, img_uint8, iteration, dataformats="CHW")

    def close(self) -> None:
        self._writer.close()


class ExperimentLogger:
    """Text log + console, a tqdm bar, TensorBoard (and W&B) scalars/images and the per-image tables."""

    def __init__(self, exp_dir: str, name: str, *, use_tb: bool, resume_iter: int = 0,
                 show_progress: bool = True, held: Optional[MemoryHandler] = None,
                 wandb: Optional[WandbOptions] = None, config: Optional[Mapping[str, Any]] = None) -> None:
        self.exp_dir = exp_dir
        self.name = name
        os.makedirs(exp_dir, exist_ok=True)
        # A resume from an earlier checkpoint: the per-image rows of the abandoned continuation go.
        drop_after(exp_dir, resume_iter)
        self._boards: List[Board] = []
        if wandb is not None and wandb.project:  # first: it may refuse to start (not logged in)
            from .wandb_logger import WandbBoard

            self._boards.append(WandbBoard(wandb, exp_dir, name, config or {}, resume_iter))
        if use_tb:
            self._boards.append(TensorBoard(os.path.join(exp_dir, "tb_logger"), resume_iter))
        self.log_path = os.path.join(exp_dir, f"train_{name}_{time.strftime('%Y%m%d_%H%M%S')}.log")
        file_handler = logging.FileHandler(self.log_path, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
        console = _TqdmHandler()
        console.setFormatter(_ConsoleFormatter())
        self._handlers: List[logging.Handler] = [file_handler, console]
        for handler in self._handlers:
            FRAMEWORK_LOGGER.addHandler(handler)
        self._held = held
        if held is not None:  # from here on lines go to the log directly; the held ones wait for replay()
            FRAMEWORK_LOGGER.removeHandler(held)
        self._bar: Optional[tqdm] = None
        self.show_progress = show_progress

    def replay(self) -> None:
        """Write the held start-up lines into this log (file and console), in the order they were logged."""
        if self._held is None:
            return
        for record in self._held.buffer:
            for handler in self._handlers:
                handler.handle(record)
        self._held.buffer.clear()

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

    # TensorBoard, W&B
    def scalars(self, values: Mapping[str, float], iteration: int) -> None:
        for board in self._boards:
            board.scalars(values, iteration)

    def image(self, tag: str, img_uint8: torch.Tensor, iteration: int) -> None:
        """A uint8 (C, H, W) image."""
        for board in self._boards:
            board.image(tag, img_uint8, iteration)

    def per_image(self, dataset: str, rows: Sequence[Row]) -> None:
        """Append a validation's per-image rows to the set's table in the experiment folder."""
        append_rows(table_path(self.exp_dir, dataset), rows)

    def end_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self.end_progress()
        for board in self._boards:
            board.close()
        self._boards = []
        for handler in self._handlers:
            FRAMEWORK_LOGGER.removeHandler(handler)
            handler.close()
        self._handlers = []


class RankLogger(ExperimentLogger):
    """The logger of a rank other than 0 under torchrun: it writes no file, no TensorBoard and no bar (rank
    0 logs the run); its own warnings and errors still reach stderr, marked with the rank."""

    def __init__(self, rank: int, held: Optional[MemoryHandler] = None) -> None:  # noqa: D107
        self.exp_dir = ""
        self.name = ""
        self.log_path = ""
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter(f"[rank {rank}] %(levelname)s: %(message)s"))
        self._handlers = [console]
        FRAMEWORK_LOGGER.addHandler(console)
        if held is not None:  # rank 0 logs the same start-up lines
            FRAMEWORK_LOGGER.removeHandler(held)
            held.buffer.clear()
        self._held = None
        self._boards = []
        self._bar = None
        self.show_progress = False

    def start_progress(self, total: int, initial: int) -> None:
        pass

    def per_image(self, dataset: str, rows: Sequence[Row]) -> None:
        pass


def seconds_since_import() -> float:
    """Seconds since the framework package began importing (torch's import included; the interpreter's own
    start, a few tens of milliseconds, not)."""
    from ._started import IMPORT_STARTED

    return time.monotonic() - IMPORT_STARTED


def format_metrics(values: Dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items())
