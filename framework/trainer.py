"""The training loop. It wires the components together and owns the loop; it knows no file formats.

    options -> datasets, loaders -> model -> (resume | pretrain) -> loop:
        step -> log every print_freq -> validate every val_freq (new best? save + archive)
             -> checkpoint every save_checkpoint_freq -> final checkpoint at the end
"""
from __future__ import annotations

import os
import platform
import signal
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import yaml

from . import __version__
from .checkpoint import CheckpointManager, read_weights, training_state
from .data.build import (build_dataset, build_train_loader, build_val_loader, close_loader, resolve_workers,
                         usable_cores)
from .data.degradations import bicubic_upsample
from .errors import UserError, user_message
from .logger import ExperimentLogger, format_metrics
from .options import Options, PathOptions, format_change, option_changes, save_options
from .registry import MODEL_REGISTRY
from .rng import capture_rng, restore_rng, seed_everything
from .run_folders import archive_previous_run, move_into_archive
from .validation import evaluate


@dataclass
class BestRecord:
    """The best value of each metric and when it was reached; the first metric decides the best model."""

    values: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def update(self, metric: str, value: float, iteration: int, higher_is_better: bool = True) -> bool:
        old = self.values.get(metric)
        better = old is None or (value > old["value"] if higher_is_better else value < old["value"])
        if better:
            self.values[metric] = {"value": float(value), "iteration": int(iteration)}
        return better

    def to_plain(self) -> Dict[str, Dict[str, float]]:
        return {k: dict(v) for k, v in self.values.items()}


@dataclass
class _Prepared:
    model: Any
    loader: Any
    sampler: Any
    val_loaders: Dict[str, Any]
    resuming: bool
    messages: List[str]


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


def load_pretrained(model: Any, path: PathOptions, note: Callable[[str], None]) -> None:
    """``path.pretrain_path`` into the model (fine-tuning, test.py); what could not be used is reported."""
    weights = read_weights(path.pretrain_path, path.param_key, log=note)
    try:
        report = model.load_pretrained(weights, strict=path.strict_load)
    except UserError as exc:
        raise UserError(f"path.pretrain_path: {path.pretrain_path}: {exc}") from None
    note(f"Loaded pretrained weights from {path.pretrain_path} (strict_load: {path.strict_load})")
    for line in report.lines():
        note(f"WARNING: pretrain: {line}")


def select_device(options: Options) -> torch.device:
    if options.device == "cuda" or (options.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def configure_threads(options: Options, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: the fastest kernels are worth finding once
    if options.num_threads:
        torch.set_num_threads(options.num_threads)
    elif device.type == "cpu" and options.train_set is not None:
        workers = resolve_workers(options.train_set.num_worker_per_gpu, device)
        cores = usable_cores()
        torch.set_num_threads(max(1, cores - workers) if workers else cores)


class Trainer:
    """One training run from validated options."""

    def __init__(self, options: Options, *, show_progress: bool = True) -> None:
        self.options = options
        self.show_progress = show_progress
        self.device = select_device(options)
        self.ckpt = CheckpointManager(options.path.weights_root, options.name, options.logger.keep_last)
        self.exp_dir = os.path.join(options.path.experiments_root, options.name)
        self.best = BestRecord()
        self.iteration = 0
        self.epoch = 0
        self.batches_done = 0
        self.stop = _StopRequest()
        self.baselines: Dict[str, Dict[str, float]] = {}
        self.current_metrics: Dict[str, float] = {}
        self.pending_rng: Optional[Dict[str, Any]] = None
        self.last_saved = 0

    # ------------------------------------------------------------------------------------------ start-up

    def _resume_source(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """Read and verify the checkpoint to resume from, before anything is written."""
        resume = self.options.path.resume_path
        if not resume:
            return None
        if resume == "auto":
            found = self.ckpt.find_resumable()
            return found  # None: nothing to resume yet, start fresh
        return resume, self.ckpt.load_resume(resume)

    def _start_logging(self, resuming: bool, messages: List[str]) -> ExperimentLogger:
        if not resuming:
            messages[:0] = archive_previous_run(self.exp_dir, self.ckpt.existing())
        logger = ExperimentLogger(self.exp_dir, self.options.name, use_tb=self.options.logger.use_tb_logger,
                                  resume_iter=self.iteration if resuming else 0,
                                  show_progress=self.show_progress)
        self.ckpt.log = logger.info
        return logger

    def _log_environment(self, log: ExperimentLogger) -> None:
        log.info(f"framework {__version__}, torch {torch.__version__}, python {platform.python_version()}, "
                 f"{platform.platform()}")
        threads = torch.get_num_threads()
        if self.device.type == "cuda":
            log.info(f"device: cuda ({torch.cuda.get_device_name(0)}), {threads} CPU threads")
        else:
            log.info(f"device: cpu ({usable_cores()} usable cores, {threads} torch threads)")
        log.info(f"options file: {self.options.source_file}; effective options:\n" +
                 yaml.safe_dump(self.options.to_dict(), sort_keys=False).rstrip())

    def _restore(self, model: Any, note: Callable[[str], None],
                 resume: Optional[Tuple[str, Dict[str, Any]]]) -> None:
        path = self.options.path
        if resume is not None:
            resume_path, state = resume
            if path.pretrain_path:
                note(f"Both resume_path and pretrain_path are set: resuming from {resume_path}, "
                         f"pretrain_path {path.pretrain_path} is ignored")
            self._check_compatible(state, note)
            model.load_training_state(state["model"])
            self.iteration = int(state["iteration"])
            self.epoch = int(state["data_position"]["epoch"])
            position = state["data_position"]
            batch = self.options.train_set.batch_size_per_gpu
            samples = int(position.get("samples_done", position["batches_done"] * batch))
            self.batches_done = samples // batch
            if samples % batch:
                note(f"WARNING: batch size changed since the checkpoint: resuming at sample {samples} of the "
                     f"epoch rounds down to batch {self.batches_done} ({samples % batch} samples repeated)")
            self.best.values = {k: dict(v) for k, v in state.get("best", {}).items()}
            self.pending_rng = state["rng"]  # restored right before the loop: nothing may draw after it
            note(f"Resumed from {resume_path}: iteration {self.iteration}, epoch {self.epoch} "
                     f"(+{self.batches_done} batches)")
        elif path.pretrain_path:
            load_pretrained(model, path, note)
        elif self.options.path.resume_path == "auto":
            note("resume_path: auto found no checkpoint of this experiment; starting from iteration 0")

    def _check_compatible(self, state: Dict[str, Any], note: Callable[[str], None]) -> None:
        """Log what changed since the checkpoint; stop on changes that cannot work (another network)."""
        saved = state.get("options", {})
        current = self.options.to_dict()
        if saved.get("network_g") != current.get("network_g"):
            raise UserError(f"path.resume_path: the checkpoint was trained with network_g "
                            f"{saved.get('network_g')}, the options now say {current.get('network_g')}; "
                            "resume with the same network, or use pretrain_path to start a new run from it")
        old_type = ((saved.get("train") or {}).get("optim_g") or {}).get("type")
        new_type = self.options.train.optim_g.type
        if old_type != new_type:
            raise UserError(f"path.resume_path: the checkpoint's optimizer is {old_type}, the options now say "
                            f"{new_type}; its state cannot carry over. Keep {old_type}, or start a new run from "
                            "the weights with pretrain_path")
        for key, old, new in option_changes(saved, current):
            if key not in ("path.resume_path", "path.pretrain_path"):
                note(f"Option changed since the checkpoint: {format_change(key, old, new)}")

    # ---------------------------------------------------------------------------------------------- state

    def _state(self, model: Any, batches_per_epoch: int) -> Dict[str, Any]:
        """Collect what a resume needs; the checkpoint module wraps it in the file format."""
        epoch, done = self.epoch, self.batches_done
        if done >= batches_per_epoch:
            epoch, done = epoch + 1, 0
        return training_state(
            iteration=self.iteration, epoch=epoch,
            data_position={"epoch": epoch, "batches_done": done,
                           "samples_done": done * self.options.train_set.batch_size_per_gpu},
            model=model.training_state(), best=self.best.to_plain(), options=self.options.to_dict(),
            rng=capture_rng())

    # ------------------------------------------------------------------------------------------------ run

    def _prepare(self) -> "_Prepared":
        """Everything that can fail on the user's input (data, checkpoints, weights, the model) happens here,
        before the first file is written; its log lines are held back until the log exists."""
        options = self.options
        configure_threads(options, self.device)
        seed_everything(options.manual_seed)
        train_set = build_dataset(options, "train")
        loader, sampler = build_train_loader(options, train_set, self.device)
        val_loaders = {phase: build_val_loader(options, phase, build_dataset(options, phase), self.device)
                       for phase in options.datasets if phase != "train"}
        messages: List[str] = []
        self.ckpt.log = messages.append
        resume = self._resume_source()
        model = MODEL_REGISTRY.get(options.model_type)(options, self.device)
        self._restore(model, messages.append, resume)
        self._compute_baselines(val_loaders, messages.append)  # decodes every validation image, up front
        if val_loaders and (options.val is None or not options.val.metrics):
            messages.append(f"WARNING: validation sets {', '.join(val_loaders)} are given but "
                            f"{'val is empty' if options.val is None else 'val.metrics is empty'}: no validation "
                            "and no best model")
        return _Prepared(model, loader, sampler, val_loaders, resume is not None, messages)

    def run(self) -> TrainResult:
        ready = self._prepare()
        try:
            return self._run_locked(ready)
        finally:
            for loader in (ready.loader, *ready.val_loaders.values()):
                close_loader(loader)

    def _run_locked(self, ready: "_Prepared") -> TrainResult:
        with self.ckpt.lock():
            self.ckpt.clean_orphans()
            newer = self.ckpt.newer_than(self.iteration) if ready.resuming else []
            if newer:  # resuming from an older checkpoint: the later ones are another history, keep them apart
                folder = move_into_archive(newer, self.options.name)
                ready.messages.append(f"Resuming from iteration {self.iteration}: {len(newer)} later checkpoint "
                                      f"file(s) of the abandoned continuation moved to {folder}")
            log = self._start_logging(ready.resuming, ready.messages)
            try:
                self._log_environment(log)
                for message in ready.messages:
                    log.info(message)
                return self._run(log, ready.model, ready.loader, ready.sampler, ready.val_loaders)
            finally:
                log.close()

    def dry_run(self, out: Callable[[str], None] = print) -> None:
        """Build everything and push one training batch through the network (forward and loss); write nothing."""
        ready = self._prepare()
        for message in ready.messages:
            out(message)
        model, spec = ready.model, self.options.train_set
        try:
            batch = next(iter(ready.loader))
        finally:
            close_loader(ready.loader)
        start = time.perf_counter()
        with torch.no_grad():
            output = model.net_g(batch["lq"].to(self.device))
            loss = model.loss(output, batch["gt"].to(self.device))
        elapsed = time.perf_counter() - start
        params = sum(p.numel() for p in model.net_g.parameters())
        out(f"network {self.options.network_g.type}: {params:,} parameters on {self.device}")
        out(f"train set: {len(ready.loader.dataset)} images, {len(ready.loader)} batches of "
            f"{spec.batch_size_per_gpu} per epoch; one batch {tuple(batch['lq'].shape)} -> "
            f"{tuple(output.shape)} (gt {tuple(batch['gt'].shape)}), loss {float(loss):.4g}, "
            f"forward {elapsed * 1000:.0f} ms")
        for phase, loader in ready.val_loaders.items():
            out(f"validation set {self.options.datasets[phase].name}: {len(loader.dataset)} images")
        if ready.resuming:
            out(f"would resume at iteration {self.iteration}")
        out(f"would write: {self.exp_dir}/ and {self.ckpt.path('iter_<N>', 'pt')} / .pth "
            f"(every {self.options.logger.save_checkpoint_freq} iterations)")
        out("dry run: options, data and network are fine; nothing was written")

    def _run(self, log: ExperimentLogger, model: Any, loader: Any, sampler: Any,
             val_loaders: Dict[str, Any]) -> TrainResult:
        options, train = self.options, self.options.train
        save_options(options, os.path.join(self.exp_dir, f"options_{options.name}.yml"))
        batches_per_epoch = sampler.per_epoch // options.train_set.batch_size_per_gpu
        log.info(f"Training set: {len(loader.dataset)} images, {batches_per_epoch} batches of "
                 f"{options.train_set.batch_size_per_gpu} per epoch, {loader.num_workers} loader workers; "
                 f"total_iter {train.total_iter}")
        last_metrics: Dict[str, Dict[str, float]] = {}
        step_times: List[float] = []
        self.stop.install()
        log.start_progress(train.total_iter, self.iteration)
        if self.pending_rng is not None:
            restore_rng(self.pending_rng)
            self.pending_rng = None
        self.last_saved = self.iteration
        try:
            while self.iteration < train.total_iter and self.stop.requested is None:
                sampler.set_position(self.epoch, self.batches_done * options.train_set.batch_size_per_gpu)
                tick = time.perf_counter()
                for batch in loader:  # step time = waiting for data + the step; not validation or saving
                    losses = model.train_step(batch)
                    self.iteration += 1
                    self.batches_done += 1
                    step_times.append(time.perf_counter() - tick)
                    self._after_step(log, model, losses, step_times, val_loaders, last_metrics, batches_per_epoch)
                    tick = time.perf_counter()
                    if self.iteration >= train.total_iter or self.stop.requested is not None:
                        break
                else:
                    self.epoch += 1
                    self.batches_done = 0
        except UserError as exc:  # e.g. an image that cannot be decoded: keep the progress, then stop
            message = user_message(exc)
            pt = self._save_progress(model, batches_per_epoch)
            saved = f"; progress saved in {pt}" if pt else ""
            log.warning(f"stopped at iteration {self.iteration}: {message}{saved}")
            raise UserError(f"{message} (stopped at iteration {self.iteration}{saved}; fix it and resume "
                            "with --auto-resume)") from None
        finally:
            self.stop.restore()
            log.end_progress()
        interrupted = self.stop.requested is not None
        pt = self._save_progress(model, batches_per_epoch) if interrupted else None
        if pt:
            log.info(f"{self.stop.requested}: stopped after iteration {self.iteration}; saved {pt}. "
                     f"Resume with path.resume_path: {pt} (or auto)")
        elif interrupted:
            log.info(f"{self.stop.requested}: stopped after iteration {self.iteration}"
                     + (" (checkpoint just saved)" if self.iteration else "; nothing to save yet"))
        else:
            log.info(f"Training finished at iteration {self.iteration}")
        if step_times:
            log.info(f"Median step time {statistics.median(step_times) * 1000:.1f} ms "
                     f"({len(step_times)} steps)")
        for line in self._summary(last_metrics):
            log.info(line)
        return TrainResult(self.iteration, self.best.to_plain(), last_metrics, interrupted)

    def _after_step(self, log: ExperimentLogger, model: Any, losses: Dict[str, torch.Tensor],
                    step_times: List[float], val_loaders: Dict[str, Any],
                    last_metrics: Dict[str, Dict[str, float]], batches_per_epoch: int) -> None:
        options, it = self.options, self.iteration
        final = it == options.train.total_iter
        if it % options.logger.print_freq == 0 or final:
            values = {k: float(v) for k, v in losses.items()}
            lr = model.current_lr()
            recent = statistics.median(step_times[-options.logger.print_freq:])
            log.scalars({**{f"losses/{k}": v for k, v in values.items()}, "lr": lr}, it)
            log.advance(it, {**{k: f"{v:.4g}" for k, v in values.items()}, "lr": f"{lr:.3g}"})
            log.info(f"[epoch {self.epoch} iter {it}] lr {lr:.3e} {format_metrics(values)} "
                     f"step {recent * 1000:.1f} ms (median)")
        else:
            log.advance(it)
        new_best = False
        if options.val is not None and val_loaders and (it % options.val.val_freq == 0 or final):
            new_best = self._validate(log, model, val_loaders, last_metrics)
        state = None
        if new_best:
            state = self._state(model, batches_per_epoch)
            pt, pth = self.ckpt.save_best(state, model.deploy_state_dict())
            first_metric = next(iter(options.val.metrics))
            archived = log.archive_best(pth, it, self.current_metrics, first_metric)
            log.info(f"New best {first_metric} {self.best.values[first_metric]['value']:.4f} at iteration {it}: "
                     f"saved {pt} and {pth}; archived {archived}")
        if it % options.logger.save_checkpoint_freq == 0 or final:
            state = state or self._state(model, batches_per_epoch)
            pt, pth = self.ckpt.save_interval(state, model.deploy_state_dict(), it)
            self.last_saved = it
            log.info(f"Saved checkpoint {pt} and {pth}")

    def _save_progress(self, model: Any, batches_per_epoch: int) -> Optional[str]:
        """A checkpoint of the last completed step, unless there is one already; returns its path."""
        if self.iteration <= self.last_saved:
            return None
        pt, _ = self.ckpt.save_interval(self._state(model, batches_per_epoch), model.deploy_state_dict(),
                                        self.iteration)
        self.last_saved = self.iteration
        return pt

    def _validate(self, log: ExperimentLogger, model: Any, val_loaders: Dict[str, Any],
                  last_metrics: Dict[str, Dict[str, float]]) -> bool:
        """Validate on every set; the first set's first metric decides the best model."""
        options, it = self.options, self.iteration
        new_best = False
        for index, (phase, loader) in enumerate(val_loaders.items()):
            name = options.datasets[phase].name
            save_dir = os.path.join(self.exp_dir, "visualization", name) if options.val.save_img else None
            def to_tensorboard(image_name: str, img: torch.Tensor, set_name: str = name) -> None:
                log.image(f"val/{set_name}/{image_name}", img, it)

            values = evaluate(model.inference, loader, options.val.metrics, save_dir, suffix=f"_{it}",
                              on_first=to_tensorboard if index == 0 else None)
            last_metrics[name] = values
            log.scalars({f"metrics/{name}/{k}": v for k, v in values.items()}, it)
            log.info(f"Validation {name} @ iter {it}: {format_metrics(values)}")
            if index == 0:
                self.current_metrics = values
                for metric_index, (metric, value) in enumerate(values.items()):
                    improved = self.best.update(metric, value, it)
                    new_best = new_best or (improved and metric_index == 0)
        return new_best

    def _summary(self, last_metrics: Dict[str, Dict[str, float]]) -> List[str]:
        """The closing lines: each validation metric against the bicubic baseline."""
        lines = []
        for name, values in last_metrics.items():
            base = self.baselines.get(name, {})
            parts = []
            for metric, value in values.items():
                if metric in base:
                    parts.append(f"{metric} {value:.4f} vs bicubic {base[metric]:.4f} "
                                 f"({value - base[metric]:+.4f})")
                else:
                    parts.append(f"{metric} {value:.4f}")
            lines.append(f"Final validation {name} @ iter {self.iteration}: " + ", ".join(parts))
        return lines

    def _compute_baselines(self, val_loaders: Dict[str, Any], note: Callable[[str], None]) -> None:
        """Bicubic upsampling on the validation sets: the number a trained model has to beat."""
        if self.options.val is None or not self.options.val.metrics or self.options.scale == 1:
            return
        for phase, loader in val_loaders.items():
            name = self.options.datasets[phase].name
            values = evaluate(lambda lq: bicubic_upsample(lq, self.options.scale), loader, self.options.val.metrics)
            self.baselines[name] = values
            note(f"Bicubic baseline {name}: {format_metrics(values)}")
