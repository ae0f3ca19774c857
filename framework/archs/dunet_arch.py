"""traiNNer-redux's ``dunet`` discriminator: a small U-Net (three strided, spectral-normalised stages down,
three DySample stages up, skip connections by addition, Mish) that judges every pixel.

Module names, parameter names and the spectral-norm layout (``torch.nn.utils.parametrizations``:
``parametrizations.weight.original`` and the power-iteration vectors ``_u``, ``_v``) follow the public
definition, so traiNNer-redux's ``net_d`` weights load with ``strict_load: true``; the upsampler is spandrel's
``DySample`` (the module traiNNer-redux imports). Inputs must be a multiple of 8 on each side.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import UserError
from ..registry import ARCH_REGISTRY
from .arch_util import check_sizes


def _dysample(channels: int) -> nn.Module:
    from spandrel.architectures.__arch_helpers.dysample import DySample  # spandrel: an install requirement

    return DySample(channels, channels, 2, 4, False)


class Down(nn.Sequential):
    """Halve the size, double the channels."""

    def __init__(self, dim: int) -> None:
        super().__init__(spectral_norm(nn.Conv2d(dim, dim * 2, 3, 2, 1)), nn.Mish(True))


class Up(nn.Sequential):
    """Double the size (learned sampling offsets), halve the channels."""

    def __init__(self, dim: int) -> None:
        super().__init__(_dysample(dim), spectral_norm(nn.Conv2d(dim, dim // 2, 3, 1, 1)))


@ARCH_REGISTRY.register(name="dunet")  # traiNNer-redux's name (its files write `type: dunet`)
class DUnet(nn.Module):
    """The discriminator of traiNNer-redux's GAN templates; ``num_feat`` must be a multiple of 4 (DySample's
    four groups)."""

    input_multiple = 8  # three halvings: the GAN models check the training patch size against it

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64) -> None:
        super().__init__()
        check_sizes(type(self).__name__, num_in_ch=num_in_ch, num_feat=num_feat)
        if num_feat % 4:
            raise UserError(f"DUnet: num_feat must be a multiple of 4, got {num_feat}")
        self.in_to_dim = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.e_x1 = Down(num_feat)
        self.e_x2 = Down(num_feat * 2)
        self.e_x3 = Down(num_feat * 4)
        self.up1 = Up(num_feat * 8)
        self.up2 = Up(num_feat * 4)
        self.up3 = Up(num_feat * 2)
        self.end_conv = nn.Sequential(
            spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)), nn.Mish(True),
            spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)), nn.Mish(True),
            nn.Conv2d(num_feat, 1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"DUnet judges images whose sides are multiples of 8, got {tuple(x.shape[-2:])}")
        x0 = self.in_to_dim(x)
        x1 = self.e_x1(x0)
        x2 = self.e_x2(x1)
        x3 = self.e_x3(x2)
        x = self.up1(x3) + x2
        x = self.up2(x) + x1
        x = self.up3(x) + x0
        return self.end_conv(x)
