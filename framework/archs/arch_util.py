"""Building blocks shared by the super-resolution networks.

Module and attribute names here are part of the checkpoint format: they must stay identical to BasicSR's so that
published pretrained weights load with ``strict=True``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, List, Sequence, Type, Union

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn import init

from ..errors import UserError

# the batch norms default_init_weights resets (the public classes; lazy ones have no weights to set yet)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

__all__ = [
    "default_init_weights", "make_layer", "ResidualBlockNoBN", "Upsample", "pixel_unshuffle",
    "check_sizes", "check_choice",
]


def check_sizes(arch: str, minimum: int = 1, **sizes: Any) -> None:
    """Reject non-integer or too-small sizes up front, so a typo in YAML fails with a message, not a torch trace."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UserError(f"{arch}: {name} must be an integer >= {minimum}, got {value!r}")


def check_choice(arch: str, name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Reject values the architecture has no layout for (e.g. an upscale it cannot build)."""
    if isinstance(value, bool) or value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise UserError(f"{arch}: {name} must be one of {allowed}, got {value!r}")
    return value


@torch.no_grad()
def default_init_weights(module_list: Union[nn.Module, Iterable[nn.Module]], scale: float = 1.0,
                         bias_fill: float = 0.0, **kwargs: Any) -> None:
    """Kaiming-init then shrink the weights: residual nets train stably from scratch when each branch starts small.

    ``kwargs`` go to :func:`torch.nn.init.kaiming_normal_`.
    """
    if isinstance(module_list, nn.Module):
        module_list = [module_list]
    for module in module_list:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.kaiming_normal_(m.weight, **kwargs)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
            elif isinstance(m, _BATCH_NORMS):
                init.constant_(m.weight, 1)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)


def make_layer(basic_block: Type[nn.Module], num_basic_block: int, **kwargs: Any) -> nn.Sequential:
    """Stack identical blocks in a ``Sequential`` so their keys are ``body.0.*``, ``body.1.*``, ... as in BasicSR."""
    return nn.Sequential(*(basic_block(**kwargs) for _ in range(num_basic_block)))


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv residual block without BatchNorm (BN hurts SR: it removes range flexibility).

    ``res_scale`` damps the branch for very wide/deep nets (EDSR-L uses 0.1). ``pytorch_init=True`` keeps
    PyTorch's default init (EDSR); otherwise the scaled Kaiming init of SRResNet is used.
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0, pytorch_init: bool = False) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        if not pytorch_init:
            default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class Upsample(nn.Sequential):
    """Sub-pixel upsampler: (conv + PixelShuffle(2)) per factor of 2, or one conv + PixelShuffle(3).

    A ``Sequential`` so that conv keys are ``upsample.0``, ``upsample.2``, ... exactly as in EDSR checkpoints.
    """

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: List[nn.Module] = []
        if scale >= 1 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                layers.append(nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1))
                layers.append(nn.PixelShuffle(2))
        elif scale == 3:
            layers.append(nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1))
            layers.append(nn.PixelShuffle(3))
        else:
            raise UserError(f"Upsample: scale must be a power of 2 or 3, got {scale!r}")
        super().__init__(*layers)


def pixel_unshuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Fold each ``scale x scale`` patch into channels; lets a x4 body serve x2/x1 on a smaller, cheaper grid.

    The channel order equals BasicSR's own implementation (c * s * s + i * s + j), so weights stay compatible.
    """
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise UserError(f"pixel_unshuffle: input height and width must be divisible by {scale}, got {h}x{w}")
    return F.pixel_unshuffle(x, scale)
