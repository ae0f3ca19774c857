"""Exponential moving average of a network's weights (BasicSR's ``net_g_ema``)."""
from __future__ import annotations

import copy
from typing import List

import torch
from torch import nn


class ModelEMA:
    """A frozen copy whose parameters track ``decay * ema + (1 - decay) * live`` after every step.

    Buffers (e.g. BatchNorm statistics) are copied as they are: averaging them has no meaning.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._ema_params: List[torch.Tensor] = list(self.module.parameters())  # built once: update() runs every step
        self._ema_buffers = list(self.module.buffers())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        live: List[torch.Tensor] = list(model.parameters())
        torch._foreach_lerp_(self._ema_params, live, 1.0 - self.decay)
        for ema_buf, buf in zip(self._ema_buffers, model.buffers(), strict=True):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
