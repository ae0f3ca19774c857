"""The checkpoints of one experiment: their names, when they are written, the one way they are written,
retention, and the checkpoint a run resumes from.

A save is one job (:meth:`CheckpointManager._write_job`): the interval files (a ``.pt`` and its weights files,
replaced together), the best files (linked to the interval files when both fall on one step, so the state is
serialised once), the best model's copy in ``experiments/<name>/best_model/``, then pruning. It returns a
:class:`Saved` record of what it wrote. A synchronous save runs the job at the save point; with
``logger.async_save`` the save point snapshots the state and the writer thread (:mod:`.writer`) runs the same
job, so the files and their bytes are the same. The records reach the caller as the return value of
:meth:`~CheckpointManager.after_step`, :meth:`~CheckpointManager.finish`,
:meth:`~CheckpointManager.save_progress` and :meth:`~CheckpointManager.close`, once their files are in place.

Under torchrun every rank calls the save policy at the same steps (it collects each rank's RNG state); rank 0
alone writes, and the others wait at a barrier until the files are in place.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Protocol, Tuple

import torch

from ..distributed import DistContext
from ..errors import UserError
from ..rng import capture_rng
from .archive import archive_best
from .errors import CheckpointError
from .format import SAFETENSORS, WEIGHT_FORMATS, check_training_state, training_state
from .io import TMP_MARK, atomic_copy_all, remove_quietly, write_checkpoint
from .safe_load import safe_load, verify
from .writer import BackgroundWriter, SnapshotBuffers, snapshot_state

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per name is then the user's care
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)


class Stateful(Protocol):
    def state_dict(self) -> Dict[str, Any]: ...


class DeployableModel(Stateful, Protocol):
    def deploy_state_dict(self) -> Dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class NewBest:
    """Why a save is a new best model: the deciding metric, its value, and the validation's metrics."""

    metric: str
    value: float
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Saved:
    """What one save wrote; its files are in place when the caller gets it."""

    iteration: int
    interval: Optional[Tuple[str, ...]] = None  # the .pt, then its weights files
    best: Optional[Tuple[str, ...]] = None
    new_best: Optional[NewBest] = None
    archived: Optional[str] = None  # the first file copied into the best-model archive
    progress: bool = False  # the last step saved on a stop request or an error, outside the save policy

    def messages(self) -> List[str]:
        """The log lines of this save."""
        lines = []
        if self.best is not None and self.new_best is not None:
            archived = f"; archived {self.archived}" if self.archived else ""
            lines.append(f"New best {self.new_best.metric} {self.new_best.value:.4f} at iteration {self.iteration}: "
                         f"saved {' and '.join(self.best)}{archived}")
        if self.interval is not None:
            lines.append(f"Saved checkpoint {' and '.join(self.interval)}")
        return lines


class CheckpointManager:
    """Names, writes, finds, prunes and loads the checkpoints of one experiment in ``weights_root``, and
    decides when to write them: every ``save_freq`` iterations, at the end, on a new best, on a stop request.

    With ``async_save`` one save is in flight at a time: the next save point (and :meth:`finish`) waits for it,
    then every rank passes a barrier, so "the previous save is on disk" holds on all ranks from there on, as
    after a synchronous save. A failed background write is raised on the training thread at the next step.
    ``best_archive`` is the folder of the best model's copy (none when not given)."""

    def __init__(self, weights_root: str, name: str, keep_last: Optional[int] = None,
                 save_freq: Optional[int] = None, dist: Optional[DistContext] = None,
                 async_save: bool = False, weights_format: str = "pth",
                 metadata: Optional[Mapping[str, str]] = None, best_archive: Optional[str] = None) -> None:
        self.root = weights_root
        self.weight_exts = WEIGHT_FORMATS[weights_format]
        self.metadata = dict(metadata or {})
        self.name = name
        self.keep_last = keep_last
        self.save_freq = save_freq
        self.dist = dist or DistContext()
        self.async_save = async_save
        self.best_archive = best_archive
        self.last_saved = 0  # the newest iteration saved by an interval or progress save, or in flight
        self._parts: Optional[Dict[str, Any]] = None
        self._writer = BackgroundWriter()
        self._buffers = SnapshotBuffers()
        self._completed: List[Saved] = []

    # names
    def path(self, tag: str, ext: str) -> str:
        return os.path.join(self.root, f"{self.name}_{tag}.{ext}")

    def iter_paths(self, iteration: int) -> Tuple[str, ...]:
        """The ``.pt`` and the weights files (``logger.save_checkpoint_format``) of ``iteration``."""
        return self._paths(f"iter_{iteration}")

    def best_paths(self) -> Tuple[str, ...]:
        return self._paths("best")

    def _paths(self, tag: str) -> Tuple[str, ...]:
        return (self.path(tag, "pt"), *(self.path(tag, ext[1:]) for ext in self.weight_exts))

    @staticmethod
    def companions(pt: str) -> List[str]:
        """The files of one checkpoint: its ``.pt`` and the weights files of every format (a run may have
        changed the format)."""
        stem = pt[:-len(".pt")]
        return [pt, stem + ".pth", stem + SAFETENSORS]

    def existing(self) -> List[str]:
        """This experiment's files (for archiving them before a fresh run reuses the name)."""
        if not os.path.isdir(self.root):
            return []
        pattern = re.compile(rf"^{re.escape(self.name)}_(iter_\d+|best)\.(pt|pth|safetensors)$")
        return sorted(os.path.join(self.root, f) for f in os.listdir(self.root) if pattern.match(f))

    def interval_checkpoints(self) -> List[Tuple[int, str]]:
        """``[(iteration, path)]`` of full interval checkpoints, newest first."""
        if not os.path.isdir(self.root):
            return []
        pattern = re.compile(rf"^{re.escape(self.name)}_iter_(\d+)\.pt$")
        found = [(int(m.group(1)), os.path.join(self.root, f))
                 for f in os.listdir(self.root) if (m := pattern.match(f))]
        return sorted(found, reverse=True)

    # housekeeping
    def clean_orphans(self) -> List[str]:
        """Delete temp files of interrupted saves of this experiment (never anything else)."""
        if not os.path.isdir(self.root):
            return []
        kinds = "(pt|pth|safetensors)"
        pattern = re.compile(rf"^\.{re.escape(self.name)}_(iter_\d+|best)\.{kinds}{re.escape(TMP_MARK)}\d+$")
        removed = []
        for fname in os.listdir(self.root):
            if pattern.match(fname):
                remove_quietly(os.path.join(self.root, fname))
                removed.append(fname)
        if removed:
            logger.info(f"Removed {len(removed)} temp file(s) of an interrupted save: {', '.join(removed)}")
        return removed

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One run per experiment: a second launch of the same name would archive the live run's files and
        delete its in-flight temp files. The OS drops the lock when the process dies, even by kill -9."""
        os.makedirs(self.root, exist_ok=True)
        path = os.path.join(self.root, f".{self.name}.lock")
        with open(path, "a+") as fh:
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise UserError(f"another run of '{self.name}' is using {self.root} (pid {holder}); wait for "
                                    "it, stop it, or choose another name") from exc
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            try:
                yield
            finally:
                remove_quietly(path)  # tidy weights/; a file left by kill -9 holds no lock and is reused

    def newer_than(self, iteration: int) -> List[str]:
        """Interval files (.pt and weights) after ``iteration``: an abandoned branch when resuming from older."""
        return [p for it, pt in self.interval_checkpoints() if it > iteration
                for p in self.companions(pt) if os.path.exists(p)]

    # the save policy
    def track(self, *, model: DeployableModel, progress: Stateful, best: Stateful,
              options: Dict[str, Any]) -> None:
        """The stateful parts a checkpoint is collected from; ``progress`` says the iteration."""
        self._parts = {"model": model, "progress": progress, "best": best, "options": options}
        self.last_saved = int(progress.state_dict()["iteration"])

    def collect(self) -> Dict[str, Any]:
        """The full training state now (references to live tensors: write it before the next step)."""
        if self._parts is None:
            raise RuntimeError("CheckpointManager.track() was not called")
        parts = self._parts
        return training_state(**parts["progress"].state_dict(), model=parts["model"].state_dict(),
                              best=parts["best"].state_dict(), options=parts["options"], rng=self._rng())

    def _rng(self) -> Dict[str, Any]:
        """This process's RNG state; with several processes rank 0's, and every rank's under ``per_rank``
        (a collective: all ranks call it at the same step)."""
        own = capture_rng()
        if not self.dist.enabled:
            return own
        return {**own, "per_rank": self.dist.gather(own)}

    def after_step(self, iteration: int, *, new_best: Optional[NewBest] = None, final: bool = False) -> List[Saved]:
        """Save what this step calls for: the interval files (every ``save_freq`` and at the end) and, with
        ``new_best``, the best files. Returns the saves completed since the last call: this step's when
        synchronous; with ``async_save`` a background one that has finished meanwhile (a failed one raises)."""
        self._poll_writer()
        interval = final or bool(self.save_freq and iteration % self.save_freq == 0)
        if interval or new_best is not None:
            self._save(iteration, interval=interval, new_best=new_best, background=self.async_save)
        return self._take_completed()

    def finish(self) -> List[Saved]:
        """The end of the loop: wait for the save in flight (raise if it failed); the saves completed since the
        last call."""
        if self.async_save:
            self._settle_writer()
        return self._take_completed()

    def save_progress(self, iteration: int) -> List[Saved]:
        """A stop request or an error mid-run: save the last completed step (a :class:`Saved` with
        ``progress``), unless it is saved already; a background save in flight is waited for. Returns the saves
        completed since the last call."""
        if iteration > self.last_saved:
            self._save(iteration, interval=True, progress=True, background=False)
        elif self.async_save:
            self._settle_writer()
        return self._take_completed()

    def close(self) -> List[Saved]:
        """The run is ending (after an error too): wait for the save in flight (its files must not be cut off)
        and end the writer thread; a failure is logged rather than hiding the error that may be ending the run.
        Returns the saves completed since the last call."""
        self._writer.stop()
        outcome = self._writer.take()
        if outcome is not None and outcome[1] is not None:
            logger.warning(f"the background checkpoint write failed too: {outcome[1]}")
        elif outcome is not None:
            self._completed.append(outcome[0])
        return self._take_completed()

    def _save(self, iteration: int, *, interval: bool, background: bool, new_best: Optional[NewBest] = None,
              progress: bool = False) -> None:
        """The one save path: every rank collects the state (a collective); rank 0 snapshots it and runs the
        write job now, or hands it to the writer thread; then every rank counts ``iteration`` as saved."""
        if self.async_save:
            self._settle_writer()  # one save at a time
        live = self.collect()
        if self.dist.is_main:
            state, params = snapshot_state((live, self._params()), self._buffers if background else None)
            job = functools.partial(self._write_job, iteration, state, params, interval=interval,
                                    new_best=new_best, progress=progress)
            if background:
                self._writer.start(job)
            else:
                # a failure raises on rank 0 before the barrier: its process exits, torchrun stops the others
                self._completed.append(job())
        if not background:
            self.dist.barrier()
        if interval:
            self.last_saved = iteration  # written, or in flight: a failure stops the run at the next step

    def _write_job(self, iteration: int, state: Dict[str, Any], params: Dict[str, torch.Tensor], *,
                   interval: bool, new_best: Optional[NewBest], progress: bool) -> Saved:
        """Everything one save writes, in order, from a snapshot; the same on either thread. It changes files
        only, never the manager."""
        interval_paths = self._write(self.iter_paths(iteration), state, params) if interval else None
        best_paths = archived = None
        if new_best is not None:
            best_paths = self.best_paths()
            if interval_paths is not None:
                atomic_copy_all(list(zip(interval_paths, best_paths, strict=True)))
            else:
                self._write(best_paths, state, params)
            if self.best_archive:
                archived = archive_best(self.best_archive, best_paths[1:], iteration, new_best.metric,
                                        new_best.metrics)
        if interval_paths is not None:
            self.prune()
        return Saved(iteration, interval=interval_paths, best=best_paths, new_best=new_best, archived=archived,
                     progress=progress)

    def _poll_writer(self) -> None:
        """Take the outcome of a background save that has finished (no waiting, no collective)."""
        if self._writer.in_flight and not self._writer.busy:
            self._writer.wait()
            self._take_outcome()

    def _settle_writer(self) -> None:
        """Rank 0 waits for the save in flight (the log says how long) and takes its outcome; then every rank
        passes a barrier."""
        if self._writer.in_flight:
            busy = self._writer.busy
            waited = self._writer.wait()
            if busy:
                logger.info(f"Waited {waited:.2f} s for the previous checkpoint write to finish")
            self._take_outcome()
        self.dist.barrier()

    def _take_outcome(self) -> None:
        outcome = self._writer.take()
        if outcome is None:
            return
        saved, failure = outcome
        if failure is not None:
            raise failure
        self._completed.append(saved)

    def _take_completed(self) -> List[Saved]:
        completed, self._completed = self._completed, []
        return completed

    def _params(self) -> Dict[str, torch.Tensor]:
        assert self._parts is not None
        return dict(self._parts["model"].deploy_state_dict())

    def _write(self, paths: Tuple[str, ...], state: Mapping[str, Any],
               params: Mapping[str, torch.Tensor]) -> Tuple[str, ...]:
        """The ``.pt`` and its weights files, replaced together (all or none)."""
        os.makedirs(self.root, exist_ok=True)
        write_checkpoint(paths, state, params, self.metadata)
        return paths

    def prune(self) -> List[str]:
        """Delete interval checkpoints beyond the newest ``keep_last`` (only after a new one is written)."""
        if not self.keep_last:
            return []
        removed = []
        for _iteration, pt in self.interval_checkpoints()[self.keep_last:]:
            for path in self.companions(pt):
                if os.path.exists(path):
                    os.remove(path)
                    removed.append(path)
        return removed

    # loading
    def find_resumable(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """The newest interval checkpoint that verifies (the ones skipped are logged with the reason), or
        None when there is none at all. Checkpoints that all fail is an error, not a fresh start."""
        candidates = self.interval_checkpoints()
        for _iteration, path in candidates:
            try:
                return path, verify(path)
            except CheckpointError as exc:
                logger.warning(f"Skipping {exc}")
        if candidates:
            raise CheckpointError(f"path.resume_path: auto: none of the {len(candidates)} checkpoint(s) of "
                                  f"'{self.name}' in {self.root} is valid (see above); move them aside to start "
                                  f"over, or set resume_path to a checkpoint you trust")
        return None

    def load_resume(self, path: str) -> Dict[str, Any]:
        """The full state at ``path``, verified; a `.pth` or anything else gets a clear error."""
        return check_training_state(safe_load(path, key="path.resume_path"), path, key="path.resume_path")
