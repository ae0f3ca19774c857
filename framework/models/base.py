"""The model contract: everything the trainer, the option checks, ``--dry-run`` and test.py may ask of a model.

A model owns named networks (``net_g``, later ``net_d``), their EMA copies, named optimizers (``optim_g``,
``optim_d``) with their schedules and, with mixed precision, gradient scalers. Callers see only
:class:`Model`; :class:`BaseModel` implements the parts that do not depend on the training logic (state,
pretrained weights, inference, dry run), so a new model writes its constructor and :meth:`train_step`.

Mixed precision, channels-last, ``torch.compile``, DDP and gradient accumulation are generic here too, per
network and per optimizer, so every model's ``train_step`` reads the same (a GAN runs it once per optimizer)::

    self.zero_grad("optim_g")
    for micro in self.micro_batches(batch):      # accumulate_steps parts; DDP syncs on the last one only
        with self.autocast():
            _, losses = self.forward_losses(micro)   # forward through self.train_net("net_g")
        self.backward(losses["l_pix"], "optim_g")   # scaled by the optimizer's GradScaler with fp16
    self.step("optim_g", clip_norm=...)          # unscale, clip, step, scaler update

The full training state is one plain dict (``state_dict``), grouped by kind so the checkpoint module can
check its shape without knowing the model::

    {"networks": {"net_g": ...}, "ema": {"net_g": ...}, "optimizers": {"optim_g": ...},
     "schedulers": {"optim_g": ...}, "scalers": {}}
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import (Any, ClassVar, ContextManager, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple,
                    Union, runtime_checkable)

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint.weights import read_weights
from ..distributed import DistContext
from ..errors import UserError, building
from ..loss_set import GeneratorLosses, LossEntry, all_entries
from ..optim import group_settings, is_schedule_free
from ..option_rules import ModelRequirements
from ..options import PathOptions, TrainingOptions, TrainOptions
from ..published import pretrained_weights, what_file_is
from ..registry import LOSS_REGISTRY, OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY
from ..schema import Component, Problem
from ..tiling import fit_input
from .ema import ModelEMA, ScheduleFreeAverage

logger = logging.getLogger(__name__)

Batch = Mapping[str, Any]
STATE_GROUPS = ("networks", "ema", "optimizers", "schedulers", "scalers")


@dataclass
class LoadReport:
    """What a non-strict weight load could not use; logged so a silent partial load cannot happen."""

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)

    @classmethod
    def compare(cls, own: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]) -> "LoadReport":
        """What of ``weights`` does not fit a network whose state dict is ``own`` (only shapes are read)."""
        return cls(missing=[k for k in own if k not in weights],
                   unexpected=[k for k in weights if k not in own],
                   mismatched=[f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in weights.items()
                               if k in own and v.shape != own[k].shape])

    def lines(self) -> List[str]:
        out = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape-mismatched (skipped)", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")
                out.append(f"{len(keys)} {label} key(s): {shown}")
        return out


@dataclass(frozen=True)
class DryRun:
    """One training batch pushed through the training forward pass and the losses, without an update."""

    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    losses: Dict[str, float]
    forward_ms: float


@runtime_checkable
class Model(Protocol):
    """What every registered model provides; ``MODEL_REGISTRY.get(type)(options, device)`` builds one."""

    device: torch.device
    # What it needs from the options, what it would ignore, the sections it owns (framework.option_rules).
    requirements: ClassVar[ModelRequirements]

    @classmethod
    def check_options(cls, options: TrainingOptions, problems: List[Problem]) -> None:
        """Its own option rules for a training run, beyond :attr:`requirements`; run with the key checks."""

    def networks(self) -> Dict[str, nn.Module]:
        """The named networks it trains (``net_g``, ``net_d``), for reports and parameter counts."""

    def train_step(self, batch: Batch, iteration: int) -> Dict[str, torch.Tensor]:
        """One optimisation step for training iteration ``iteration`` (1-based); named, detached losses."""

    def learning_rates(self) -> Dict[str, float]:
        """The learning rate each optimizer ran the last step at (first entry: the one to show)."""

    def inference(self, lq: torch.Tensor) -> torch.Tensor:
        """The deploy network's output (EMA weights when EMA is on), in eval mode, without gradients."""

    def deploy_state_dict(self) -> Dict[str, torch.Tensor]:
        """The weights a ``.pth`` holds: the deploy network's."""

    def state_dict(self) -> Dict[str, Any]:
        """The full training state, grouped as in the module docstring (references: snapshot before async use)."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly from :meth:`state_dict`'s output."""

    def validated(self, metrics: Mapping[str, float], higher_is_better: Mapping[str, bool]) -> None:
        """The first validation set's results at a validation (schedules that react to a metric step here)."""

    def load_pretrained(self, weights: Mapping[str, torch.Tensor], *, strict: bool,
                        network: str = "net_g") -> LoadReport:
        """Weights into one network (and its EMA copy); without ``strict``, what does not fit is reported."""

    def dry_run(self, batch: Batch) -> DryRun:
        """The training forward pass and losses on ``batch``, with no update and no gradients."""

    def distribute(self, dist: DistContext) -> None:
        """Train as one of the processes of ``dist`` (the trainer calls it once, before the first step): DDP
        wrappers, per-rank randomness. Nothing changes for a single process."""


class BaseModel:
    """The generic half of :class:`Model`; subclasses fill the dicts and write ``forward_losses``/``train_step``."""

    deploy_network = "net_g"
    requirements: ClassVar[ModelRequirements] = ModelRequirements()
    # DDP: set True in a model whose networks do not all receive gradients in every backward pass.
    find_unused_parameters = False

    @classmethod
    def check_options(cls, options: TrainingOptions, problems: List[Problem]) -> None:
        """No rules beyond :attr:`requirements`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.nets: Dict[str, nn.Module] = {}
        self.emas: Dict[str, Union[ModelEMA, ScheduleFreeAverage]] = {}
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.schedulers: Dict[str, Any] = {}
        self.scalers: Dict[str, Any] = {}
        self._step_lrs: Dict[str, float] = {}
        # What the training forward pass calls per network (DDP and/or compiled wrappers of self.nets); the
        # plain networks stay in self.nets for inference, EMA and state dicts (no module./_orig_mod. keys).
        self.train_nets: Dict[str, nn.Module] = {}
        self._ddp: Dict[str, DistributedDataParallel] = {}
        self.accumulate_steps = 1
        self.amp_dtype: Optional[torch.dtype] = None
        self.channels_last = False
        self.compile_mode: Optional[str] = None  # torch.compile's mode for the training forward pass; None: off

    # --------------------------------------------------------------- precision, speed, DDP, accumulation

    def prepare_training(self, train: TrainOptions) -> None:
        """Call at the end of a subclass constructor, once networks, EMA and optimizers exist: applies the
        precision and speed options of ``train`` to every trainable network and optimizer (DDP follows in
        :meth:`distribute`)."""
        self.accumulate_steps = train.accumulate_steps
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(train.mixed_precision or "")
        self.channels_last = train.channels_last
        self.compile_mode = train.compile_mode if train.compile else None
        if train.mixed_precision == "fp16":  # bf16 has float32's range: no scaling needed
            self.scalers = {name: torch.amp.GradScaler(self.device.type) for name in self.optimizers}
        for name, net in self.nets.items():
            if not any(p.requires_grad for p in net.parameters()):
                continue
            if self.channels_last:
                net.to(memory_format=torch.channels_last)  # in place: the optimizers keep their parameters
                if name in self.emas:
                    self.emas[name].module.to(memory_format=torch.channels_last)
            self._wrap_for_training(name)

    def distribute(self, dist: DistContext) -> None:
        """Under torchrun, wrap every trained network in DDP (which also starts each process from rank 0's
        weights); one process: nothing to do."""
        if not dist.enabled:
            return
        for name in self.train_nets:
            self._ddp[name] = DistributedDataParallel(
                self.nets[name], device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.find_unused_parameters)
            self._wrap_for_training(name)

    def _wrap_for_training(self, name: str) -> None:
        """What the training forward pass calls for network ``name``: the network, or its DDP wrapper, compiled
        when ``train.compile`` is on (torch.compile compiles at the first call, so wrapping again is free)."""
        runner: nn.Module = self._ddp.get(name, self.nets[name])
        if self.compile_mode is not None:
            runner = torch.compile(runner, mode=self.compile_mode)  # type: ignore[assignment]
        self.train_nets[name] = runner

    def train_net(self, name: str) -> nn.Module:
        """The network as the training forward pass calls it (DDP, compiled); ``self.nets[name]`` otherwise."""
        runner = self.train_nets.get(name)
        return runner if runner is not None else self.nets[name]

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """An input batch tensor on the model's device, in channels-last layout when that option is on."""
        tensor = tensor.to(self.device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def target(self, batch: Batch, loss: str) -> torch.Tensor:
        """The ground truth loss ``loss`` (``pix``, ``percep``, ``gan``) compares with, on the device: the batch's
        ``gt_<loss>`` when it carries one (Real-ESRGAN's sharpened GT), else ``gt``."""
        return self.to_device(batch.get(f"gt_{loss}", batch["gt"]))

    def autocast(self) -> ContextManager[Any]:
        """The mixed-precision context of the training forward pass (a no-op in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def micro_batches(self, batch: Batch) -> Iterator[Batch]:
        """``batch`` in ``accumulate_steps`` equal parts (the loader delivers that many micro-batches at once).
        Every part but the last runs inside DDP's ``no_sync``: gradients are averaged across processes once,
        when the last micro-batch's backward pass completes them."""
        steps = self.accumulate_steps
        if steps == 1:
            yield batch
            return
        size = len(batch["lq"]) // steps
        for index in range(steps):
            part = {key: value[index * size:(index + 1) * size] if isinstance(value, (torch.Tensor, list, tuple))
                    else value for key, value in batch.items()}
            with contextlib.ExitStack() as stack:
                if index < steps - 1:
                    for wrapper in self._ddp.values():
                        stack.enter_context(wrapper.no_sync())
                yield part

    def zero_grad(self, optimizer_name: str) -> None:
        self.optimizers[optimizer_name].zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor, optimizer_name: str) -> None:
        """Backpropagate one micro-batch's loss for ``optimizer_name``: divided by the number of micro-batches
        (the step then follows the mean gradient) and scaled by that optimizer's GradScaler with fp16."""
        if self.accumulate_steps > 1:
            loss = loss / self.accumulate_steps
        scaler = self.scalers.get(optimizer_name)
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def step(self, optimizer_name: str, clip_norm: Optional[float] = None) -> None:
        """One update of ``optimizer_name``: unscale (fp16), clip the gradient norm of its parameters, step,
        update the scaler (which skips a step whose gradients overflowed)."""
        optimizer = self.optimizers[optimizer_name]
        scaler = self.scalers.get(optimizer_name)
        if clip_norm is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        self._step_lrs[optimizer_name] = float(optimizer.param_groups[0]["lr"])
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    @staticmethod
    def mean_losses(parts: Sequence[Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """The micro-batches' named losses averaged (detached), as one step reports them."""
        if len(parts) == 1:
            return {name: loss.detach() for name, loss in parts[0].items()}
        return {name: torch.stack([part[name].detach().float() for part in parts]).mean() for name in parts[0]}

    # ------------------------------------------------------------------------------------- for subclasses

    def forward_losses(self, batch: Batch) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The training forward pass: the output and the named losses (not yet backpropagated)."""
        raise NotImplementedError

    def train_step(self, batch: Batch, iteration: int) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def build_losses(self, train: TrainOptions) -> GeneratorLosses:
        """The losses of ``train`` (BasicSR's keys and the ``losses`` list) with a nonzero weight, built on the
        model's device; what a constructor refuses is an option error at its key."""
        def build(entry: LossEntry) -> nn.Module:
            with building("train", *entry.key, args=entry.component.kwargs):  # type: ignore[arg-type]
                return entry.component.build(LOSS_REGISTRY).to(self.device)

        return GeneratorLosses(self.loss_entries(train), build)

    @staticmethod
    def loss_entries(train: TrainOptions) -> List[LossEntry]:
        """Every loss of ``train``, weight 0 or not (what the models build, and what their option rules read)."""
        return all_entries(train.pixel_opt, train.perceptual_opt, train.gan_opt, train.losses or ())

    def loss_terms(self, losses: GeneratorLosses, output: torch.Tensor, batch: Batch,
                   prefix: str) -> Dict[str, torch.Tensor]:
        """The generator's named losses (``<prefix><name>``); LDL also gets the EMA generator's output."""
        def ema_output() -> torch.Tensor:
            with torch.no_grad():
                return self.emas["net_g"].module(self.to_device(batch["lq"]))  # the option checks ask for EMA

        terms = losses.terms(output, lambda kind: self.target(batch, kind), ema_output)
        return {prefix + name: value for name, value in terms.items()}

    def build_optimizer(self, component: Component, net: nn.Module, key: str) -> torch.optim.Optimizer:
        """``self.optimizers[key]`` over the trainable parameters of ``net``."""
        params = [p for p in net.parameters() if p.requires_grad]
        with building("train", key, args=component.kwargs):
            self.optimizers[key] = component.build(OPTIMIZER_REGISTRY, params=params)
        return self.optimizers[key]

    def build_schedule(self, optimizer_name: str, component: Optional[Component], key: str,
                       warmup_iter: int) -> Any:
        """``self.schedulers[optimizer_name]`` from ``train.<key>`` (a constant rate when it is absent)."""
        component = component or Component("ConstantLR", {})
        with building("train", key, args=component.kwargs):
            self.schedulers[optimizer_name] = component.build(
                SCHEDULER_REGISTRY, optimizer=self.optimizers[optimizer_name], warmup_iter=max(0, warmup_iter))
        return self.schedulers[optimizer_name]

    def build_ema(self, decay: float, network: str = "net_g", optimizer_name: str = "optim_g") -> None:
        """The averaged weights validation and the ``.pth`` use for ``network``: the EMA with ``decay`` > 0
        (of the optimizer's average when it is schedule-free), else a schedule-free optimizer's average, else
        none (the live weights)."""
        net, optimizer = self.nets[network], self.optimizers[optimizer_name]
        average = ScheduleFreeAverage(net, optimizer) if is_schedule_free(optimizer) else None
        if decay > 0:
            self.emas[network] = ModelEMA(net, decay, source=average)
        elif average is not None:
            self.emas[network] = average

    def validated(self, metrics: Mapping[str, float], higher_is_better: Mapping[str, bool]) -> None:
        for name, scheduler in self.schedulers.items():
            report = getattr(scheduler, "report", None)
            if report is None:
                continue
            metric = scheduler.monitor or next(iter(metrics))
            if report(metrics[metric], higher_is_better.get(metric, True)):
                logger.info(f"{type(scheduler).__name__} ({name}): {metric} has not improved for "
                            f"{scheduler.patience + 1} validation(s); learning rate now "
                            f"{self.optimizers[name].param_groups[0]['lr']:.3e}")

    def note_learning_rates(self) -> None:
        """Call right before the optimizer steps: the optimizers then already hold the next iteration's rate."""
        self._step_lrs = {name: float(opt.param_groups[0]["lr"]) for name, opt in self.optimizers.items()}

    # ---------------------------------------------------------------------------------------------- queries

    def networks(self) -> Dict[str, nn.Module]:
        return dict(self.nets)

    def learning_rates(self) -> Dict[str, float]:
        return dict(self._step_lrs) or {name: float(opt.param_groups[0]["lr"])
                                        for name, opt in self.optimizers.items()}

    @property
    def deploy_net(self) -> nn.Module:
        """The weights validation measures and `.pth` files hold: EMA when enabled."""
        ema = self.emas.get(self.deploy_network)
        return ema.module if ema is not None else self.nets[self.deploy_network]

    @torch.no_grad()
    def inference(self, lq: torch.Tensor) -> torch.Tensor:
        net = self.deploy_net
        was_training = net.training
        net.eval()
        try:
            return fit_input(net, lq.to(self.device))
        finally:
            net.train(was_training)

    def deploy_state_dict(self) -> Dict[str, torch.Tensor]:
        # contiguous: a channels-last network exports the usual layout (a no-op for the others)
        return {key: value.contiguous() for key, value in self.deploy_net.state_dict().items()}

    def dry_run(self, batch: Batch) -> DryRun:
        start = time.perf_counter()
        with torch.no_grad():
            output, losses = self.forward_losses(batch)
        elapsed = (time.perf_counter() - start) * 1000
        return DryRun(tuple(batch["lq"].shape), tuple(output.shape), {k: float(v) for k, v in losses.items()},
                      elapsed)

    # ------------------------------------------------------------------------------------------------ state

    def state_dict(self) -> Dict[str, Any]:
        return {
            "networks": {name: net.state_dict() for name, net in self.nets.items()},
            "ema": {name: ema.state_dict() for name, ema in self.emas.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state["networks"][name])
        for name, ema in self.emas.items():  # EMA switched on since the checkpoint: it starts from the network
            ema.load_state_dict(state["ema"].get(name) or state["networks"][name])
        for name, optimizer in self.optimizers.items():
            # The saved statistics (Adam moments, step counts) continue; the hyperparameters are the ones the
            # options give now, so a changed lr, betas or weight decay takes effect on resume as the log says.
            current = [group_settings(group) for group in optimizer.param_groups]
            optimizer.load_state_dict(state["optimizers"][name])
            for group, settings in zip(optimizer.param_groups, current, strict=True):
                group.update(settings)
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        for name, scaler in self.scalers.items():
            if name in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][name])

    def load_pretrained(self, weights: Mapping[str, torch.Tensor], *, strict: bool,
                        network: str = "net_g") -> LoadReport:
        net = self.nets[network]
        own = net.state_dict()
        report = LoadReport.compare(own, weights)
        usable = {k: v for k, v in weights.items() if k in own and v.shape == own[k].shape}
        if strict and report.lines():
            key = network.replace("net_", "network_")
            raise UserError(f"the weights do not fit {key}: " + "; ".join(report.lines()) +
                            f" (fix {key}, or set path.strict_load: false to load what fits)")
        net.load_state_dict(usable, strict=strict)
        if network in self.emas:
            self.emas[network].load_state_dict(net.state_dict())
        return report


# Which ``path`` option holds the starting weights of each network.
PRETRAIN_OPTIONS = {"net_g": "pretrain_path", "net_d": "pretrain_path_d"}


def load_pretrained(model: Model, path: PathOptions, network: str = "net_g") -> None:
    """``path.pretrain_path`` (``pretrain_path_d`` for ``net_d``) into one network of the model (fine-tuning,
    test.py); the log names the file and what the load did."""
    key = PRETRAIN_OPTIONS[network]
    source = getattr(path, key)
    assert source is not None
    own = model.networks()[network].state_dict()
    weights = pretrained_weights(
        source, lambda: read_weights(source, path.param_key, network, option=f"path.{key}"),
        lambda state: not LoadReport.compare(own, state).lines())
    try:
        report = model.load_pretrained(weights, strict=path.strict_load, network=network)
    except UserError as exc:
        what = what_file_is(source)
        if what:  # spandrel knows the file: say what it is against what the options build
            net = model.networks()[network]
            raise UserError(f"path.{key}: {source} is {what}, but {network.replace('net_', 'network_')} is "
                            f"{type(net).__name__} ({sum(p.numel() for p in net.parameters()) / 1e6:.2f}M "
                            "parameters): the weights do not fit; set network_g: {type: auto} to train the "
                            "file's network, or name another file") from exc
        raise UserError(f"path.{key}: {source}: {exc}") from exc
    into = "" if network == "net_g" else f" into {network}"
    logger.info(f"Loaded pretrained weights from {source}{into} (strict_load: {path.strict_load})")
    lines = report.lines()
    for line in lines:
        logger.warning(f"pretrain: {line}")
    if not lines:
        logger.info(f"pretrain: all {len(weights)} tensors of {network} loaded, none missing or unexpected")


def parameter_count(model: Model, network: Optional[str] = None) -> int:
    nets = model.networks()
    chosen = [nets[network]] if network else list(nets.values())
    return sum(p.numel() for net in chosen for p in net.parameters())
