"""Modified SRResNet (ESRGAN / BasicSR ``MSRResNet``): residual blocks without BN plus a bilinear global skip."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UserError
from ..registry import ARCH_REGISTRY
from .arch_util import ResidualBlockNoBN, check_choice, check_sizes, default_init_weights, make_layer


@ARCH_REGISTRY.register()
class MSRResNet(nn.Module):
    """SRResNet variant; the net only learns the residual over a bilinear upscale, which speeds up convergence.

    x4 uses two x2 pixel-shuffle stages (``upconv1``/``upconv2``); x2 and x3 use one stage.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4) -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(name, num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        check_sizes(name, minimum=0, num_block=num_block)
        check_choice(name, "upscale", upscale, (2, 3, 4))
        if num_out_ch != num_in_ch:
            raise UserError(f"{name}: num_out_ch must equal num_in_ch (the upscaled input is added back), "
                            f"got {num_in_ch} -> {num_out_ch}")
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.upscale = upscale

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
        if upscale == 4:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

        inits = [self.conv_first, self.upconv1, self.conv_hr, self.conv_last]
        if upscale == 4:
            inits.append(self.upconv2)
        default_init_weights(inits, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return out + base
