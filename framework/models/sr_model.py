"""Super-resolution training logic: one network, one pixel loss, one optimizer, a schedule, optional EMA.

The model knows tensors and modules, not files or the loop; the generic half of the contract (state,
pretrained weights, inference, dry run) is :class:`~framework.models.base.BaseModel`'s.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from ..errors import building
from ..options import Options
from ..registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY, OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY
from ..schema import Component
from .base import Batch, BaseModel
from .ema import ModelEMA


def build_network(options: Options) -> nn.Module:
    with building("network_g", args=options.network_g.kwargs):
        return options.network_g.build(ARCH_REGISTRY)


@MODEL_REGISTRY.register()
class SRModel(BaseModel):
    """Builds everything from the options and runs one optimisation step at a time."""

    # Checked with the option keys (framework.options): what this model needs to train, and what it would ignore.
    required_options = ("train.pixel_opt",)
    unused_options = ("network_d", "train.optim_d", "train.scheduler_d", "train.gan_opt", "train.perceptual_opt",
                      "path.pretrain_path_d")

    def __init__(self, options: Options, device: torch.device) -> None:
        super().__init__(device)
        self.net_g = self.nets["net_g"] = build_network(options).to(device)
        train = options.train
        if train is None:  # inference only (test.py)
            self.net_g.eval()
            return
        self.net_g.train()
        assert train.pixel_opt is not None  # required_options
        with building("train", "pixel_opt", args=train.pixel_opt.kwargs):
            self.loss = train.pixel_opt.build(LOSS_REGISTRY).to(device)
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        with building("train", "optim_g", args=train.optim_g.kwargs):
            self.optimizer = self.optimizers["optim_g"] = train.optim_g.build(OPTIMIZER_REGISTRY, params=params)
        schedule = train.scheduler or Component("ConstantLR", {})
        with building("train", "scheduler", args=schedule.kwargs):
            self.scheduler = self.schedulers["optim_g"] = schedule.build(
                SCHEDULER_REGISTRY, optimizer=self.optimizer, warmup_iter=max(0, train.warmup_iter))
        self.grad_clip_norm = train.grad_clip_norm
        if train.ema_decay > 0:
            self.emas["net_g"] = ModelEMA(self.net_g, train.ema_decay)
        self.prepare_training(train)

    def forward_losses(self, batch: Batch) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        lq, gt = self.to_device(batch["lq"]), self.to_device(batch["gt"])
        output = self.train_net("net_g")(lq)
        return output, {"l_pix": self.loss(output, gt)}

    def train_step(self, batch: Batch, iteration: int) -> Dict[str, torch.Tensor]:
        """One optimizer step; losses come back as detached tensors (no device sync until they are logged)."""
        self.zero_grad("optim_g")
        parts = []
        for micro in self.micro_batches(batch):
            with self.autocast():
                _, losses = self.forward_losses(micro)
            self.backward(losses["l_pix"], "optim_g")
            parts.append(losses)
        self.step("optim_g", clip_norm=self.grad_clip_norm)
        self.scheduler.step()
        for ema in self.emas.values():
            ema.update(self.net_g)
        return self.mean_losses(parts)
