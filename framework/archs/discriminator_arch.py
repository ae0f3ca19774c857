"""Discriminators for GAN fine-tuning: ESRGAN's VGG-style one and Real-ESRGAN's U-Net with spectral norm.

Parameter names, shapes and order are those of the published checkpoints (BasicSR 1.4.2), so a
``net_d_*.pth`` from BasicSR or Real-ESRGAN loads with ``strict_load: true``. Both keep PyTorch's default
initialisation, as the reference implementations do.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from ..errors import UserError
from ..registry import ARCH_REGISTRY
from .arch_util import check_choice, check_sizes


@ARCH_REGISTRY.register()
class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's discriminator: strided conv + BatchNorm stages down to 4x4, then two linear layers.

    The linear layers fix the input size: 128 (5 stages) or 256 (6 stages), which must equal the training
    patch size (``datasets.train.gt_size``).
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(name, num_in_ch=num_in_ch, num_feat=num_feat)
        self.input_size = check_choice(name, "input_size", input_size, (128, 256))
        # (in, out) channel multipliers of each stage's two convs; the 256 layout adds a sixth stage.
        widths = [(0, 1), (1, 2), (2, 4), (4, 8), (8, 8)] + ([(8, 8)] if input_size == 256 else [])
        self.stages = len(widths)
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)
        for stage, (cin, cout) in enumerate(widths[1:], start=1):
            setattr(self, f"conv{stage}_0", nn.Conv2d(num_feat * cin, num_feat * cout, 3, 1, 1, bias=False))
            setattr(self, f"bn{stage}_0", nn.BatchNorm2d(num_feat * cout, affine=True))
            setattr(self, f"conv{stage}_1", nn.Conv2d(num_feat * cout, num_feat * cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{stage}_1", nn.BatchNorm2d(num_feat * cout, affine=True))
        self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise UserError(f"VGGStyleDiscriminator: input must be {self.input_size}x{self.input_size} "
                            f"(input_size), got {x.shape[-1]}x{x.shape[-2]}; make network_d.input_size equal "
                            "datasets.train.gt_size (128 or 256)")
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for stage in range(1, self.stages):
            for part in (0, 1):
                conv, bn = getattr(self, f"conv{stage}_{part}"), getattr(self, f"bn{stage}_{part}")
                feat = self.lrelu(bn(conv(feat)))
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)


@ARCH_REGISTRY.register()
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's discriminator: a U-Net with spectral-normalised convs that judges every pixel.

    Any input whose height and width are multiples of 8 works. Spectral norm is the classic
    ``torch.nn.utils.spectral_norm`` (``weight_orig``, ``weight_u``, ``weight_v``), the layout of the
    published weights; its power-iteration vectors are buffers, so they are saved and resumed exactly.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        check_sizes(type(self).__name__, num_in_ch=num_in_ch, num_feat=num_feat)
        if not isinstance(skip_connection, bool):
            raise UserError(f"UNetDiscriminatorSN: skip_connection must be true or false, got {skip_connection!r}")
        self.skip_connection = skip_connection
        nf = num_feat

        def sn_conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(cin, cout, kernel, stride, 1, bias=False))

        self.conv0 = nn.Conv2d(num_in_ch, nf, kernel_size=3, stride=1, padding=1)
        self.conv1 = sn_conv(nf, nf * 2, 4, 2)  # down
        self.conv2 = sn_conv(nf * 2, nf * 4, 4, 2)
        self.conv3 = sn_conv(nf * 4, nf * 8, 4, 2)
        self.conv4 = sn_conv(nf * 8, nf * 4, 3, 1)  # up
        self.conv5 = sn_conv(nf * 4, nf * 2, 3, 1)
        self.conv6 = sn_conv(nf * 2, nf, 3, 1)
        self.conv7 = sn_conv(nf, nf, 3, 1)  # extra
        self.conv8 = sn_conv(nf, nf, 3, 1)
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise UserError(f"UNetDiscriminatorSN: height and width must be multiples of 8, got "
                            f"{x.shape[-1]}x{x.shape[-2]}; choose datasets.train.gt_size accordingly")

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=0.2, inplace=True)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)
