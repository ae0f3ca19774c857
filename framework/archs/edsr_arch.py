"""EDSR (Lim et al. 2017) in BasicSR's layout: mean-shifted input, residual trunk, sub-pixel upsampler."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UserError
from ..registry import ARCH_REGISTRY
from .arch_util import ResidualBlockNoBN, Upsample, check_sizes, make_layer


@ARCH_REGISTRY.register()
class EDSR(nn.Module):
    """EDSR; works internally on ``img_range``-scaled, mean-subtracted pixels because the published weights do.

    ``rgb_mean`` is a plain attribute, not a buffer, so it never appears in the state_dict (published
    checkpoints don't have it).
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, num_feat: int = 64, num_block: int = 16, upscale: int = 4,
                 res_scale: float = 1, img_range: float = 255., rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040)
                 ) -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(name, num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        check_sizes(name, minimum=0, num_block=num_block)
        if isinstance(upscale, bool) or not isinstance(upscale, int) or not (
                upscale == 3 or (upscale >= 2 and upscale & (upscale - 1) == 0)):
            raise UserError(f"{name}: upscale must be 3 or a power of 2 (2, 4, 8, ...), got {upscale!r}")
        if isinstance(res_scale, bool) or not isinstance(res_scale, (int, float)) or res_scale <= 0:
            raise UserError(f"{name}: res_scale must be a positive number, got {res_scale!r}")
        if isinstance(img_range, bool) or not isinstance(img_range, (int, float)) or img_range <= 0:
            raise UserError(f"{name}: img_range must be a positive number, got {img_range!r}")
        try:
            mean = [float(v) for v in rgb_mean]
        except (TypeError, ValueError) as exc:
            raise UserError(f"{name}: rgb_mean must be a list of numbers, got {rgb_mean!r}") from exc
        if len(mean) != num_in_ch or num_out_ch != num_in_ch:
            raise UserError(f"{name}: rgb_mean needs one value per channel and num_out_ch must equal num_in_ch "
                            f"(the mean is added back), got {len(mean)} values, {num_in_ch} -> {num_out_ch}")
        self.upscale = upscale
        self.img_range = float(img_range)
        self.mean = torch.tensor(mean).view(1, len(mean), 1, 1)

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale,
                               pytorch_init=True)
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(device=x.device, dtype=x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        res = self.conv_after_body(self.body(x)) + x
        x = self.conv_last(self.upsample(res))
        return x / self.img_range + mean
