"""Super-resolution training logic: one network, one pixel loss, one optimizer, a schedule, optional EMA.

The model knows tensors and modules, not files or the loop: the trainer calls :meth:`train_step`,
:meth:`inference` and the state methods; the checkpoint manager turns that state into files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

import torch
from torch import nn

from ..errors import UserError, building
from ..options import Options
from ..registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY, OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY
from ..schema import Component
from .ema import ModelEMA


@dataclass
class LoadReport:
    """What a non-strict weight load could not use; logged so a silent partial load cannot happen."""

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        out = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape-mismatched (skipped)", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")
                out.append(f"{len(keys)} {label} key(s): {shown}")
        return out


def build_network(options: Options) -> nn.Module:
    with building("network_g", args=options.network_g.kwargs):
        return options.network_g.build(ARCH_REGISTRY)


@MODEL_REGISTRY.register()
class SRModel:
    """Builds everything from the options and runs one optimisation step at a time."""

    def __init__(self, options: Options, device: torch.device) -> None:
        self.device = device
        self.net_g = build_network(options).to(device)
        train = options.train
        self.ema: Optional[ModelEMA] = None
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.scheduler = None
        if train is None:  # inference only (test.py)
            self.net_g.eval()
            return
        self.net_g.train()
        with building("train", "pixel_opt", args=train.pixel_opt.kwargs):
            self.loss = train.pixel_opt.build(LOSS_REGISTRY).to(device)
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        with building("train", "optim_g", args=train.optim_g.kwargs):
            self.optimizer = train.optim_g.build(OPTIMIZER_REGISTRY, params=params)
        schedule = train.scheduler or Component("ConstantLR", {})
        with building("train", "scheduler", args=schedule.kwargs):
            self.scheduler = schedule.build(SCHEDULER_REGISTRY, optimizer=self.optimizer,
                                            warmup_iter=max(0, train.warmup_iter))
        self.grad_clip_norm = train.grad_clip_norm
        if train.ema_decay > 0:
            self.ema = ModelEMA(self.net_g, train.ema_decay)

    # ------------------------------------------------------------------------------------------------ training

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """One optimizer step; losses come back as detached tensors (no device sync until they are logged)."""
        lq = batch["lq"].to(self.device, non_blocking=True)
        gt = batch["gt"].to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        output = self.net_g(lq)
        l_pix = self.loss(output, gt)
        l_pix.backward()
        if self.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip_norm)
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.net_g)
        return {"l_pix": l_pix.detach()}

    def current_lr(self) -> float:
        """The learning rate the last step ran at (the optimizer already holds the next one)."""
        return getattr(self, "last_lr", self.optimizer.param_groups[0]["lr"])

    # ----------------------------------------------------------------------------------------------- inference

    @property
    def deploy_net(self) -> nn.Module:
        """The weights validation measures and `.pth` files hold: EMA when enabled."""
        return self.ema.module if self.ema is not None else self.net_g

    @torch.no_grad()
    def inference(self, lq: torch.Tensor) -> torch.Tensor:
        net = self.deploy_net
        was_training = net.training
        net.eval()
        try:
            return net(lq.to(self.device))
        finally:
            net.train(was_training)

    # ------------------------------------------------------------------------------------------------- state

    def deploy_state_dict(self) -> Dict[str, torch.Tensor]:
        return self.deploy_net.state_dict()

    def training_state(self) -> Dict[str, object]:
        """Everything the model needs to continue exactly (references, not copies: snapshot before async use)."""
        return {
            "net_g": self.net_g.state_dict(),
            "net_g_ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_training_state(self, state: Mapping[str, object]) -> None:
        self.net_g.load_state_dict(state["net_g"])
        if self.ema is not None:
            self.ema.load_state_dict(state["net_g_ema"] if state.get("net_g_ema") is not None else state["net_g"])
        # The saved statistics (Adam moments, step counts) continue; the hyperparameters are the ones the
        # options give now, so a changed lr, betas or weight decay takes effect on resume as the log says.
        current = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, settings in zip(self.optimizer.param_groups, current):
            group.update(settings)
        self.scheduler.load_state_dict(state["scheduler"])

    def load_pretrained(self, weights: Mapping[str, torch.Tensor], strict: bool) -> LoadReport:
        """Load weights into the network (and the EMA copy); without ``strict``, skip what does not fit."""
        own = self.net_g.state_dict()
        report = LoadReport(missing=[k for k in own if k not in weights],
                            unexpected=[k for k in weights if k not in own],
                            mismatched=[f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in weights.items()
                                        if k in own and v.shape != own[k].shape])
        usable = {k: v for k, v in weights.items() if k in own and v.shape == own[k].shape}
        if strict and report.lines():
            raise UserError("the weights do not fit network_g: " + "; ".join(report.lines()) +
                            " (fix network_g, or set path.strict_load: false to load what fits)")
        self.net_g.load_state_dict(usable, strict=strict)
        if self.ema is not None:
            self.ema.load_state_dict(self.net_g.state_dict())
        return report
