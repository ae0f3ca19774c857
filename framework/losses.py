"""Losses with BasicSR's arguments: pixel losses (``pixel_opt``: ``loss_weight``, ``reduction``) and the
adversarial loss (``gan_opt``). The perceptual loss (``perceptual_opt``) is in :mod:`framework.perceptual`."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from .errors import UserError
from .option_rules import LossSpec
from .registry import LOSS_REGISTRY

Reduction = Literal["mean", "sum", "none"]


class _WeightedLoss(nn.Module):
    def __init__(self, loss_weight: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise UserError(f"{type(self).__name__}: reduction must be mean, sum or none, got {reduction!r}")
        self.loss_weight = loss_weight
        self.reduction = reduction

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.elementwise(pred, target)
        if self.reduction == "mean":
            loss = loss.mean()
        elif self.reduction == "sum":
            loss = loss.sum()
        return self.loss_weight * loss


@LOSS_REGISTRY.register()
class L1Loss(_WeightedLoss):
    """Mean absolute error: the usual choice for PSNR-oriented SR (sharper than MSE)."""

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).abs()


@LOSS_REGISTRY.register()
class MSELoss(_WeightedLoss):
    """Mean squared error: directly optimises PSNR, tends to blur."""

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).square()


@LOSS_REGISTRY.register()
class CharbonnierLoss(_WeightedLoss):
    """sqrt(diff^2 + eps): L1-like but differentiable at zero (LapSRN, EDVR)."""

    def __init__(self, loss_weight: float = 1.0, reduction: Reduction = "mean", eps: float = 1e-12) -> None:
        super().__init__(loss_weight, reduction)
        self.eps = eps

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target).square() + self.eps)


GanType = Literal["vanilla", "lsgan", "wgan", "wgan_softplus", "hinge"]


@LOSS_REGISTRY.register()
class GANLoss(nn.Module):
    """The adversarial loss of BasicSR's ``gan_opt``, on the discriminator's raw outputs (logits).

    - ``vanilla``: binary cross-entropy with logits against ``real_label_val`` / ``fake_label_val``;
    - ``lsgan``: mean squared error against the same labels;
    - ``wgan``: ``-mean(x)`` for real, ``mean(x)`` for fake;
    - ``wgan_softplus``: ``mean(softplus(-x))`` for real, ``mean(softplus(x))`` for fake;
    - ``hinge``: for the discriminator ``mean(relu(1 - x))`` real / ``mean(relu(1 + x))`` fake, for the
      generator ``-mean(x)``.

    ``loss_weight`` scales the generator's loss only (``is_disc=False``), as in BasicSR: the discriminator's
    loss is its own objective.
    """

    option_spec = LossSpec(role="adversarial")  # for train.gan_opt

    def __init__(self, gan_type: GanType = "vanilla", real_label_val: float = 1.0, fake_label_val: float = 0.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if gan_type not in ("vanilla", "lsgan", "wgan", "wgan_softplus", "hinge"):
            raise UserError(f"GANLoss: gan_type must be vanilla, lsgan, wgan, wgan_softplus or hinge, got "
                            f"{gan_type!r}")
        self.gan_type = gan_type
        self.real_label_val = real_label_val
        self.fake_label_val = fake_label_val
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target_is_real: bool, is_disc: bool = False) -> torch.Tensor:
        kind = self.gan_type
        if kind == "hinge":
            if is_disc:
                loss = torch.relu(1 - pred).mean() if target_is_real else torch.relu(1 + pred).mean()
            else:
                loss = -pred.mean()
        elif kind == "wgan":
            loss = -pred.mean() if target_is_real else pred.mean()
        elif kind == "wgan_softplus":
            loss = F.softplus(-pred).mean() if target_is_real else F.softplus(pred).mean()
        else:
            label = torch.full_like(pred, self.real_label_val if target_is_real else self.fake_label_val)
            if kind == "vanilla":
                loss = F.binary_cross_entropy_with_logits(pred, label)
            else:
                loss = F.mse_loss(pred, label)
        return loss if is_disc else loss * self.loss_weight
