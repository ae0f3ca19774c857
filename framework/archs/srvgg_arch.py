"""SRVGGNetCompact of Real-ESRGAN (realesr-animevideov3, realesr-general-x4v3): a plain conv stack on the LR grid."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UserError
from ..registry import ARCH_REGISTRY
from .arch_util import check_choice, check_sizes


@ARCH_REGISTRY.register()
class SRVGGNetCompact(nn.Module):
    """Compact VGG-style SR net; all convs run at LR size and one pixel shuffle upsamples, so it is very fast.

    ``body`` is a flat ``ModuleList`` of conv/activation modules (keys ``body.0``, ``body.1``, ...) as in the
    published checkpoints; with ``prelu`` the activations have weights, with ``relu``/``lrelu`` they don't.
    ``leakyrelu`` (Real-ESRGAN's spelling) is accepted as an alias of ``lrelu``.
    The output is a residual over the nearest-upsampled input.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_conv: int = 16,
                 upscale: int = 4, act_type: str = "prelu") -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(name, num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, upscale=upscale)
        check_sizes(name, minimum=0, num_conv=num_conv)
        check_choice(name, "act_type", act_type, ("prelu", "relu", "lrelu", "leakyrelu"))
        if num_out_ch != num_in_ch:
            raise UserError(f"{name}: num_out_ch must equal num_in_ch (the upscaled input is added back), "
                            f"got {num_in_ch} -> {num_out_ch}")
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_conv = num_conv
        self.upscale = upscale
        self.act_type = act_type

        self.body = nn.ModuleList()
        self.body.append(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1))
        self.body.append(self._activation(act_type, num_feat))
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(self._activation(act_type, num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    @staticmethod
    def _activation(act_type: str, num_feat: int) -> nn.Module:
        if act_type == "relu":
            return nn.ReLU(inplace=True)
        if act_type == "prelu":
            return nn.PReLU(num_parameters=num_feat)
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
