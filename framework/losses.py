"""Pixel losses with BasicSR's arguments (``loss_weight``, ``reduction``), registered for ``pixel_opt``."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .errors import UserError
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
