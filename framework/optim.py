"""Optimizers and learning-rate schedules.

Every schedule here is a closed-form function of the number of optimizer steps taken, so resuming from a
checkpoint gives exactly the learning rate an uninterrupted run would have had (the classic BasicSR bug of a
schedule that is wrong after resume cannot happen: there is no accumulated state to get wrong).
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Dict, List, Sequence

import torch
from torch.optim.lr_scheduler import LRScheduler

from .errors import UserError
from .registry import OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY

for _optimizer in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
    OPTIMIZER_REGISTRY.register(_optimizer)


class IterationLR(LRScheduler):
    """Base of our schedules: ``lr_at(base_lr, steps_done)`` times a linear warm-up.

    The warm-up factor for the optimizer step number ``steps_done + 1`` is ``min(1, (steps_done + 1) / W)``,
    so step ``W`` runs at exactly the scheduled learning rate.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_iter: int = 0) -> None:
        self.warmup_iter = max(0, int(warmup_iter))
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> List[float]:  # type: ignore[override]
        steps = self.last_epoch
        warm = min(1.0, (steps + 1) / self.warmup_iter) if self.warmup_iter > 0 else 1.0
        return [warm * self.lr_at(float(base), steps) for base in self.base_lrs]

    _get_closed_form_lr = get_lr

    def state_dict(self) -> Dict[str, Any]:
        """Only the position: the schedule and base rates come from the current options, so extending a run
        with new periods, milestones or lr takes effect on resume instead of being overwritten by old ones."""
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


@SCHEDULER_REGISTRY.register()
class ConstantLR(IterationLR):
    """The base learning rate throughout (after the warm-up, if any)."""

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        return base_lr


@SCHEDULER_REGISTRY.register()
class MultiStepLR(IterationLR):
    """Multiply by ``gamma`` once each milestone (in iterations) has been passed."""

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: Sequence[int], gamma: float = 0.5,
                 warmup_iter: int = 0) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, steps_done)


@SCHEDULER_REGISTRY.register()
class CosineAnnealingRestartLR(IterationLR):
    """Cosine annealing from the base rate to ``eta_min`` over each period, restarting at ``restart_weights``
    times the base rate (SGDR, as in BasicSR). After the last period the rate stays at ``eta_min``."""

    def __init__(self, optimizer: torch.optim.Optimizer, periods: Sequence[int],
                 restart_weights: Sequence[float] = (1.0,), eta_min: float = 0.0, warmup_iter: int = 0) -> None:
        if len(periods) != len(restart_weights):
            raise UserError(f"CosineAnnealingRestartLR: periods ({len(periods)}) and restart_weights "
                            f"({len(restart_weights)}) must have the same length")
        if any(int(p) < 1 for p in periods):
            raise UserError(f"CosineAnnealingRestartLR: every period must be a positive number of iterations, "
                            f"got {list(periods)}")
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_min = eta_min
        self.cumulative = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        cycle = bisect.bisect_left(self.cumulative, steps_done)  # BasicSR: eta_min at the period's end,
        if cycle >= len(self.periods):                             # the restart one step later
            return self.eta_min
        start = self.cumulative[cycle] - self.periods[cycle]
        progress = (steps_done - start) / self.periods[cycle]
        weight = self.restart_weights[cycle]
        return self.eta_min + weight * 0.5 * (base_lr - self.eta_min) * (1 + math.cos(math.pi * progress))
