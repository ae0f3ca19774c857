"""Super-resolution training logic: one network, a pixel and/or perceptual loss, one optimizer, a schedule,
optional EMA.

The model knows tensors and modules, not files or the loop; the generic half of the contract (state,
pretrained weights, inference, dry run) is :class:`~framework.models.base.BaseModel`'s.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn

from ..errors import building
from ..option_rules import ModelRequirements
from ..options import Options, TrainingOptions, TrainOptions
from ..registry import ARCH_REGISTRY, MODEL_REGISTRY
from ..schema import Problem
from .base import Batch, BaseModel


def build_network(options: Options) -> nn.Module:
    with building("network_g", args=options.network_g.kwargs):
        return options.network_g.build(ARCH_REGISTRY)


GAN_FIX = "set model_type: ESRGANModel or SRGANModel to train a GAN"


@MODEL_REGISTRY.register()
class SRModel(BaseModel):
    """Builds everything from the options and runs one optimisation step at a time."""

    requirements = ModelRequirements(
        required=(("train.pixel_opt", "train.perceptual_opt", "train.losses"),),
        unused=("network_d", "train.optim_d", "train.scheduler_d", "train.gan_opt", "path.pretrain_path_d"),
        unused_fix=GAN_FIX)

    @classmethod
    def check_options(cls, options: TrainingOptions, problems: List[Problem]) -> None:
        """No GAN loss in ``train.losses`` (``train.gan_opt`` is an unused key), and a loss to train with."""
        entries = cls.loss_entries(options.train)
        active = [entry for entry in entries if entry.weight != 0]
        for entry in active:
            if entry.role == "adversarial" and entry.key[0] == "losses":
                problems.append(Problem(("train", *entry.key, "type"), f"{options.model_type} does not use a GAN "
                                                                       f"loss; remove it, or {GAN_FIX}"))
        if entries and not active:
            problems.append(Problem(("train", "losses"), f"every loss has loss_weight 0; {options.model_type} needs "
                                                         "at least one"))

    def __init__(self, options: Options, device: torch.device) -> None:
        super().__init__(device)
        self.net_g = self.nets["net_g"] = build_network(options).to(device)
        train = options.train
        if train is None:  # inference only (test.py)
            self.net_g.eval()
            return
        self.net_g.train()
        self.build_training(options, train)
        self.prepare_training(train)

    def build_training(self, options: Options, train: TrainOptions) -> None:
        """What training adds to the network: losses (BasicSR's l_pix, l_percep, l_style, and the losses list),
        the optimizer and its schedule, gradient clipping, EMA."""
        self.losses = self.build_losses(train)
        self.optimizer = self.build_optimizer(train.optim_g, self.net_g, "optim_g")
        self.scheduler = self.build_schedule("optim_g", train.scheduler, "scheduler", train.warmup_iter)
        self.grad_clip_norm = train.grad_clip_norm
        self.build_ema(train.ema_decay)

    def forward_losses(self, batch: Batch) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        output = self.train_net("net_g")(self.to_device(batch["lq"]))
        return output, self.loss_terms(self.losses, output, batch, prefix="l_")

    def train_step(self, batch: Batch, iteration: int) -> Dict[str, torch.Tensor]:
        """One optimizer step; losses come back as detached tensors (no device sync until they are logged)."""
        self.zero_grad("optim_g")
        parts = []
        for micro in self.micro_batches(batch):
            with self.autocast():
                _, losses = self.forward_losses(micro)
            self.backward(sum(losses.values()), "optim_g")  # type: ignore[arg-type]
            parts.append(losses)
        self.step("optim_g", clip_norm=self.grad_clip_norm)
        self.scheduler.step()
        for ema in self.emas.values():
            ema.update(self.net_g)
        return self.mean_losses(parts)
