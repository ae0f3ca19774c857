"""Averaged copies of a network's weights that validation and the ``.pth`` files use instead of the live ones:
BasicSR's exponential moving average (``net_g_ema``) and a schedule-free optimizer's own average."""
from __future__ import annotations

import copy
from typing import List, Optional

import torch
from torch import nn

from ..optim import optimizer_steps, schedule_free_average
from ..torch_private import foreach


def _frozen_copy(model: nn.Module) -> nn.Module:
    module = copy.deepcopy(model).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class ScheduleFreeAverage:
    """The weights a schedule-free optimizer evaluates at (its average ``x``), in a frozen copy of the network.

    The training weights stay where the optimizer trains (``y``); the copy is recomputed from them and the
    optimizer's state whenever it is read after a step (validation, saving, an EMA update), so switching to
    evaluation never rounds the training weights and a stop at any iteration resumes bit for bit. Saved in the
    ``.pt``'s ``ema`` group (what ``scripts/checkpoint.py export`` takes by default); a resume recomputes it.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self._module = _frozen_copy(model)
        self._params: List[torch.Tensor] = list(self._module.parameters())
        self._buffers = list(self._module.buffers())
        self._steps = -1  # the optimizer step count the copy was computed at

    @property
    def module(self) -> nn.Module:
        steps = optimizer_steps(self.optimizer)
        if steps != self._steps:
            with torch.no_grad():
                live = list(self.model.parameters())
                foreach.copy_(self._params, schedule_free_average(self.optimizer, live))
                for own, buf in zip(self._buffers, self.model.buffers(), strict=True):
                    own.copy_(buf)
            self._steps = steps
        return self._module

    def update(self, model: nn.Module) -> None:
        """Nothing to do per step: the average is computed when it is read."""

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._steps = -1  # recomputed from the restored network and optimizer state


class ModelEMA:
    """A frozen copy whose parameters track ``decay * ema + (1 - decay) * live`` after every step.

    ``source``: average something else than the network given to :meth:`update` (a schedule-free optimizer's
    average, so the EMA smooths the weights that optimizer evaluates at). Buffers (e.g. BatchNorm statistics)
    are copied as they are: averaging them has no meaning.
    """

    def __init__(self, model: nn.Module, decay: float, source: Optional[ScheduleFreeAverage] = None) -> None:
        self.decay = decay
        self.source = source
        self.module = _frozen_copy(model)
        self._ema_params: List[torch.Tensor] = list(self.module.parameters())  # built once: update() runs every step
        self._ema_buffers = list(self.module.buffers())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        if self.source is not None:
            model = self.source.module
        live: List[torch.Tensor] = list(model.parameters())
        foreach.lerp_(self._ema_params, live, 1.0 - self.decay)
        for ema_buf, buf in zip(self._ema_buffers, model.buffers(), strict=True):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
