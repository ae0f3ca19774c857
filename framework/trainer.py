"""The training loop. It wires the components together and owns the loop; it knows no file formats and no
model internals (only the :class:`~framework.models.base.Model` contract).

    built (model, datasets) -> loaders -> (resume | pretrain) -> loop:
        step -> log every print_freq -> validate every val_freq
             -> checkpoint manager: interval / final / new best (and its archive) -> stop request
"""
from __future__ import annotations

import logging
import os
import signal
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch.utils.data import DataLoader

from . import per_image
from .checkpoint.errors import CheckpointWriteError
from .checkpoint.format import weights_metadata
from .checkpoint.manager import CheckpointManager, NewBest, Saved
from .checkpoint.writer import resolve_async_save
from .checks import Built
from .compatibility import check_compatible
from .data.build import build_train_loader, build_val_loader, close_loader, loader_batch_size, num_samples
from .data.sampler import ResumableSampler
from .device import configure_threads
from .distributed import DistContext, rank_seed
from .errors import UserError
from .logger import ExperimentLogger, RankLogger, format_metrics, held_messages, held_startup_lines
from .models.base import load_pretrained
from .options import TrainingOptions, save_options
from .progress import BestRecord, TrainingProgress
from .run_report import batch_line, dry_run_lines, environment_lines, startup_line, summary_lines
from .rng import restore_rng, seed_everything
from .run_folders import archive_previous_run, move_into_archive
from .validation import Evaluation, bicubic_baseline, evaluate, model_inference, strip_maker

logger = logging.getLogger(__name__)


@dataclass
class _Prepared:
    loader: DataLoader
    sampler: ResumableSampler
    val_loaders: Dict[str, DataLoader]
    resuming: bool

    def close(self) -> None:
        for loader in (self.loader, *self.val_loaders.values()):
            close_loader(loader)


@dataclass
class TrainResult:
    iteration: int
    best: Dict[str, Dict[str, float]]
    last_metrics: Dict[str, Dict[str, float]]
    interrupted: bool = False


class _StopRequest:
    """SIGINT/SIGTERM: finish the step, save, exit 0. A second SIGINT aborts at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested: Optional[str] = None
        self._previous: Dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a test runner thread)
                pass

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        # os.write, not print: the handler may run while the main thread is inside a print.
        os.write(2, f"\n{self.requested}: finishing the current step and saving a checkpoint "
                    f"(Ctrl-C again to abort without saving)\n".encode())

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class Trainer:
    """One training run from validated options and what the start-up checks built from them."""

    def __init__(self, options: TrainingOptions, built: Built, *, show_progress: bool = True,
                 dist: Optional[DistContext] = None) -> None:
        assert options.train_set is not None  # load_options (require_train)
        self.options = options
        self.dist = dist or DistContext()
        self.model = built.model
        self.model.distribute(self.dist)
        self.train_set = built.datasets["train"]
        self.val_sets = built.val_sets
        self.device = built.device
        self.show_progress = show_progress
        self.exp_dir = os.path.join(options.path.experiments_root, options.name)
        self.ckpt = CheckpointManager(options.path.weights_root, options.name, options.logger.keep_last,
                                      options.logger.save_checkpoint_freq, dist=self.dist,
                                      async_save=resolve_async_save(options.logger.async_save, self.device),
                                      weights_format=options.logger.save_checkpoint_format,
                                      metadata=weights_metadata(options.to_dict()),
                                      best_archive=os.path.join(self.exp_dir, "best_model"))
        self.progress = TrainingProgress(batch_size=loader_batch_size(options), world_size=self.dist.world_size)
        self.best = BestRecord()
        self.stop = _StopRequest()
        self.baselines: Dict[str, Evaluation] = {}
        self.current_metrics: Dict[str, float] = {}
        self.pending_rng: Optional[Dict[str, Any]] = None

    @property
    def iteration(self) -> int:
        return self.progress.iteration

    # ------------------------------------------------------------------------------------------ start-up

    def _prepare(self) -> _Prepared:
        """Everything that can fail on the user's input (checkpoints, weights) happens here, before the first
        file is written; its log lines are held back until the log exists."""
        options = self.options
        configure_threads(options, self.device)
        shard = {"rank": self.dist.rank, "world_size": self.dist.world_size}
        loader, sampler = build_train_loader(options, self.train_set, self.device, **shard)
        self.progress.batches_per_epoch = sampler.per_epoch // self.progress.batch_size
        val_loaders = {phase: build_val_loader(options, phase, dataset, self.device, **shard)
                       for phase, dataset in self.val_sets.items()}
        ready = _Prepared(loader, sampler, val_loaders, resuming=False)
        try:
            resume = self._resume_source()
            self._restore(resume)
            self._compute_baselines(val_loaders)  # decodes every validation image, up front
        except BaseException:
            ready.close()
            raise
        if val_loaders and (options.val is None or not options.val.metrics):
            logger.warning(f"validation sets {', '.join(val_loaders)} are given but "
                           f"{'val is empty' if options.val is None else 'val.metrics is empty'}: no validation "
                           "and no best model")
        ready.resuming = resume is not None
        self.ckpt.track(model=self.model, progress=self.progress, best=self.best, options=options.to_dict())
        return ready

    def _resume_source(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """Read and verify the checkpoint to resume from, before anything is written. Under torchrun rank 0
        chooses it and every rank loads that one file."""
        resume = self.options.path.resume_path
        if self.dist.restart_count:
            logger.info(f"torchrun restarted the workers (restart {self.dist.restart_count} of at most "
                        f"{self.dist.max_restarts})" + (": continuing from the newest valid checkpoint"
                                                        if resume == "auto" else
                                                        "; without --auto-resume this restart starts over"))
        if not resume:
            return None
        if resume == "auto":
            found = self.ckpt.find_resumable() if self.dist.is_main else None  # None: nothing yet, start fresh
            path = self.dist.broadcast(found[0] if found else None)
            if not self.dist.is_main and path is not None:
                found = path, self.ckpt.load_resume(path)
            return found
        return resume, self.ckpt.load_resume(resume)

    def _restore(self, resume: Optional[Tuple[str, Dict[str, Any]]]) -> None:
        path = self.options.path
        if resume is not None:
            resume_path, state = resume
            if path.pretrain_path:
                logger.info(f"Both resume_path and pretrain_path are set: resuming from {resume_path}, "
                            f"pretrain_path {path.pretrain_path} is ignored")
            for line in check_compatible(state.get("options", {}), self.options.to_dict()):
                logger.info(line)
            self.model.load_state_dict(state["model"])
            for warning in self.progress.load_state_dict(state):
                logger.warning(warning)
            self.best.load_state_dict(state.get("best", {}))
            self.pending_rng = self._own_rng(state["rng"])  # restored right before the loop
            logger.info(f"Resumed from {resume_path}: iteration {self.progress.iteration}, epoch "
                        f"{self.progress.epoch} (+{self.progress.batches_done} batches)")
        else:
            if path.pretrain_path:
                load_pretrained(self.model, path)
            if path.pretrain_path_d:
                load_pretrained(self.model, path, network="net_d")
        if resume is None and path.resume_path == "auto":
            logger.info("resume_path: auto found no checkpoint of this experiment; starting from iteration 0")

    def _own_rng(self, saved: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """This rank's saved RNG state; None where the number of processes changed (fresh per-rank seeds)."""
        per_rank = saved.get("per_rank")
        if per_rank is not None and len(per_rank) == self.dist.world_size:
            return per_rank[self.dist.rank]
        if per_rank is None and not self.dist.enabled:
            return saved
        return None

    def _compute_baselines(self, val_loaders: Dict[str, DataLoader]) -> None:
        """Bicubic upsampling on the validation sets: the number a trained model has to beat."""
        val = self.options.val
        if val is None or not val.metrics or self.options.scale == 1:
            return
        for phase, loader in val_loaders.items():
            name = self.options.datasets[phase].name
            self.baselines[name] = bicubic_baseline(loader, val.metrics, self.options.scale, self.dist.gather)
            logger.info(f"Bicubic baseline {name}: {format_metrics(self.baselines[name].averages)}")

    # ------------------------------------------------------------------------------------------------ run

    def run(self) -> TrainResult:
        with held_startup_lines() as held:
            ready = self._prepare()
            try:
                with self.ckpt.lock() if self.dist.is_main else nullcontext():
                    log = self._open_log(ready, held) if self.dist.is_main else RankLogger(self.dist.rank, held)
                    self.dist.barrier()  # the other ranks start once rank 0 has set up the folders
                    try:
                        for line in environment_lines(self.options, self.device, self.dist, self.ckpt.async_save):
                            logger.info(line)
                        log.replay()
                        return self._run(log, ready)
                    finally:
                        log.close()
            finally:
                ready.close()

    def _open_log(self, ready: _Prepared, held: Any) -> ExperimentLogger:
        """Rank 0: tidy the weights folder, archive a previous run of the name, open the experiment log."""
        self.ckpt.clean_orphans()
        newer = self.ckpt.newer_than(self.iteration) if ready.resuming else []
        if newer:  # resuming from an older checkpoint: the later ones are another history
            folder = move_into_archive(newer, self.options.name)
            logger.info(f"Resuming from iteration {self.iteration}: {len(newer)} later checkpoint "
                        f"file(s) of the abandoned continuation moved to {folder}")
        if not ready.resuming:
            archive_previous_run(self.exp_dir, self.ckpt.existing())
        return ExperimentLogger(self.exp_dir, self.options.name, use_tb=self.options.logger.use_tb_logger,
                                resume_iter=self.iteration if ready.resuming else 0,
                                show_progress=self.show_progress, held=held, wandb=self.options.logger.wandb,
                                config=self.options.to_dict())

    def dry_run(self, out: Any = print) -> None:
        """Build everything and push one training batch through the model (forward and losses); write
        nothing."""
        with held_startup_lines() as held:
            ready = self._prepare()
            try:
                batch = next(iter(ready.loader))
            finally:
                ready.close()
            for line in held_messages(held):
                out(line)
        val_images = {self.options.datasets[phase].name: num_samples(loader.dataset)
                      for phase, loader in ready.val_loaders.items()}
        for line in dry_run_lines(self.options, self.model, self.device, self.model.dry_run(batch),
                                  tuple(batch["gt"].shape), num_samples(ready.loader.dataset), len(ready.loader),
                                  val_images):
            out(line)
        if ready.resuming:
            out(f"would resume at iteration {self.iteration}")
        out(f"would write: {self.exp_dir}/ and {self.ckpt.path('iter_<N>', 'pt')} / .pth "
            f"(every {self.options.logger.save_checkpoint_freq} iterations)")
        out("dry run: options, data and network are fine; nothing was written")

    def _run(self, log: ExperimentLogger, ready: _Prepared) -> TrainResult:
        options, train, progress = self.options, self.options.train, self.progress
        if self.dist.is_main:
            save_options(options, os.path.join(self.exp_dir, f"options_{options.name}.yml"))
        images = num_samples(ready.loader.dataset)
        logger.info(f"Training set: {images} images, {progress.batches_per_epoch} batches of "
                    f"{progress.batch_size} per epoch, {ready.loader.num_workers} loader workers; "
                    f"total_iter {train.total_iter}")
        batch = batch_line(options, self.dist, progress.batch_size)
        if batch:
            logger.info(batch)
        last_metrics: Dict[str, Dict[str, float]] = {}
        step_times: List[float] = []
        self.stop.install()
        log.start_progress(train.total_iter, self.iteration)
        if self.pending_rng is not None:
            restore_rng(self.pending_rng)
            self.pending_rng = None
        elif self.dist.enabled:  # a fresh start, or another number of processes: each rank its own seed
            seed_everything(rank_seed(options.manual_seed + self.iteration, self.dist.rank))
        try:
            while self.iteration < train.total_iter and not self._stopping():
                ready.sampler.set_position(progress.epoch, progress.samples_done)
                tick = time.perf_counter()
                for batch in ready.loader:  # step time = waiting for data + the step; not validation or saving
                    if not step_times:
                        logger.info(startup_line(ready.resuming))
                    losses = self.model.train_step(batch, self.iteration + 1)
                    progress.step()
                    step_times.append(time.perf_counter() - tick)
                    self._after_step(log, losses, step_times, ready.val_loaders, last_metrics)
                    tick = time.perf_counter()
                    if self.iteration >= train.total_iter or self._stopping():
                        break
                else:
                    progress.next_epoch()
            self._log_saved(self.ckpt.finish())  # a background save in flight: on disk (or its failure raised)
        except CheckpointWriteError as exc:  # a full disk: another save now would fail the same way
            logger.warning(f"stopped at iteration {self.iteration}: {exc}")
            raise CheckpointWriteError(f"{exc} (stopped at iteration {self.iteration}; make room and resume with "
                                       "--auto-resume)") from exc
        except UserError as exc:  # e.g. an image that cannot be decoded: keep the progress, then stop
            message = str(exc)
            # Under torchrun the other ranks are inside a step this one will never join: no collective save;
            # this process exits and torchrun stops the others (auto-resume takes the last interval checkpoint).
            pt = self._log_saved(self.ckpt.save_progress(self.iteration)) if not self.dist.enabled else None
            saved = f"; progress saved in {pt}" if pt else ""
            logger.warning(f"stopped at iteration {self.iteration}: {message}{saved}")
            raise UserError(f"{message} (stopped at iteration {self.iteration}{saved}; fix it and resume "
                            "with --auto-resume)") from exc
        finally:
            self._log_saved(self.ckpt.close())  # after an error too: a save in flight is completed, never cut off
            self.stop.restore()
            log.end_progress()
        interrupted = self.stop.requested is not None
        pt = self._log_saved(self.ckpt.save_progress(self.iteration)) if interrupted else None
        if pt:
            logger.info(f"{self.stop.requested}: stopped after iteration {self.iteration}; saved {pt}. "
                        f"Resume with path.resume_path: {pt} (or auto)")
        elif interrupted:
            logger.info(f"{self.stop.requested}: stopped after iteration {self.iteration}"
                        + (" (checkpoint just saved)" if self.iteration else "; nothing to save yet"))
        else:
            logger.info(f"Training finished at iteration {self.iteration}")
        if step_times:
            logger.info(f"Median step time {statistics.median(step_times) * 1000:.1f} ms "
                        f"({len(step_times)} steps)")
        for line in summary_lines(last_metrics, self.baselines, self.iteration):
            logger.info(line)
        return TrainResult(self.iteration, self.best.state_dict(), last_metrics, interrupted)

    def _stopping(self) -> bool:
        """Whether to stop after this step: a signal here, or on any other rank (all ranks agree on the step)."""
        stopping = self.dist.any(self.stop.requested is not None)
        if stopping and self.stop.requested is None:
            self.stop.requested = "stop request of another rank"
        return stopping

    def _after_step(self, log: ExperimentLogger, losses: Dict[str, torch.Tensor], step_times: List[float],
                    val_loaders: Dict[str, DataLoader], last_metrics: Dict[str, Dict[str, float]]) -> None:
        options, it = self.options, self.iteration
        final = it == options.train.total_iter
        if it % options.logger.print_freq == 0 or final:
            values = {k: float(v) for k, v in losses.items()}
            lr = next(iter(self.model.learning_rates().values()))
            recent = statistics.median(step_times[-options.logger.print_freq:])
            log.scalars({**{f"losses/{k}": v for k, v in values.items()}, "lr": lr}, it)
            log.advance(it, {**{k: f"{v:.4g}" for k, v in values.items()}, "lr": f"{lr:.3g}"})
            logger.info(f"[epoch {self.progress.epoch} iter {it}] lr {lr:.3e} {format_metrics(values)} "
                        f"step {recent * 1000:.1f} ms (median)")
        else:
            log.advance(it)
        new_best = False
        if options.val is not None and val_loaders and (it % options.val.val_freq == 0 or final):
            new_best = self._validate(log, val_loaders, last_metrics)
        self._log_saved(self.ckpt.after_step(it, new_best=self._new_best() if new_best else None, final=final))

    def _new_best(self) -> NewBest:
        """The record of this step's new best model: the first metric's best value and the validation's values."""
        assert self.options.val is not None
        metric = next(iter(self.options.val.metrics))
        return NewBest(metric, self.best.values[metric]["value"], dict(self.current_metrics))

    @staticmethod
    def _log_saved(saves: List[Saved]) -> Optional[str]:
        """Log what the checkpoint manager reports saved; returns the ``.pt`` of a save of the last step on a
        stop or an error instead (the message that ends the run names it)."""
        progress = None
        for saved in saves:
            if saved.progress and saved.interval is not None:
                progress = saved.interval[0]
                continue
            for line in saved.messages():
                logger.info(line)
        return progress

    def _validate(self, log: ExperimentLogger, val_loaders: Dict[str, DataLoader],
                  last_metrics: Dict[str, Dict[str, float]]) -> bool:
        """Validate on every set; the first set's first metric decides the best model."""
        options, it = self.options, self.iteration
        assert options.val is not None
        new_best = False
        infer = model_inference(self.model, options.val, options.scale)
        # every rank makes the strips of its shard (they are gathered with the metrics); rank 0 logs them
        strips = strip_maker(options.val.show_images, options.val.show_crop, options.scale, self.dist.rank,
                             self.dist.world_size)
        for index, (phase, loader) in enumerate(val_loaders.items()):
            name = options.datasets[phase].name
            save_dir = os.path.join(self.exp_dir, "visualization", name) if options.val.save_img else None
            result = evaluate(infer, loader, options.val.metrics, save_dir, suffix=f"_{it}", strips=strips,
                              gather=self.dist.gather)
            self._log_images(log, name, result)
            values = result.averages
            last_metrics[name] = values
            log.scalars({f"metrics/{name}/{k}": v for k, v in values.items()}, it)
            logger.info(f"Validation {name} @ iter {it}: {format_metrics(values)}")
            if index == 0:
                self.current_metrics = values
                self.model.validated(values, options.val.higher_is_better)
                for metric_index, (metric, value) in enumerate(values.items()):
                    improved = self.best.update(metric, value, it, options.val.higher_is_better.get(metric, True))
                    new_best = new_best or (improved and metric_index == 0)
        return new_best

    def _log_images(self, log: ExperimentLogger, name: str, result: Evaluation) -> None:
        """The comparison strips (bicubic | output | GT) to TensorBoard / W&B, and the per-image rows."""
        for image in result.images:
            if image.strip is not None:
                log.image(f"val/{name}/{image.name}", image.strip, self.iteration)
        baseline = self.baselines.get(name)
        log.per_image(name, per_image.image_rows(name, self.iteration, result.rows(),
                                                 baseline.by_name() if baseline else {}))
