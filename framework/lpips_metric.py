"""LPIPS (Zhang et al. 2018) as a validation metric, for perceptual (GAN) models: lower is better.

Optional: it needs the ``lpips`` package (its calibrated linear layers ship inside it) and torchvision's
ImageNet weights of the backbone (``alex``, ``vgg`` or ``squeeze``) in the torch hub cache, where
torchvision puts them. Nothing is downloaded: the backbone weights are read from that file, and when the
package or the file is missing, asking for the metric is an option error naming what to install or where
to put which file; not asking for it costs nothing.
"""
from __future__ import annotations

import functools
import importlib
import os
import re
from typing import Literal

import torch

from .checkpoint.safe_load import safe_load
from .errors import UserError, first_line
from .option_rules import MetricSpec
from .registry import METRIC_REGISTRY

_BACKBONES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def _backbone_file(net: str) -> str:
    import torchvision  # here, not at import: torchvision takes seconds to import, and few runs use LPIPS

    url = torchvision.models.get_model_weights(_BACKBONES[net]).IMAGENET1K_V1.url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


@functools.lru_cache(maxsize=None)
def lpips_model(net: str = "alex") -> torch.nn.Module:
    """The LPIPS network with the calibrated weights of the package and the backbone from the torch cache."""
    if net not in _BACKBONES:
        raise UserError(f"calculate_lpips: net must be alex, vgg or squeeze, got {net!r}")
    try:
        lpips = importlib.import_module("lpips")
    except ImportError as exc:  # the package or one of its own dependencies
        raise UserError("calculate_lpips needs the lpips package, which is not installed: pip install lpips "
                        "(or remove the metric)") from exc
    path = _backbone_file(net)
    if not os.path.isfile(path):
        raise UserError(f"calculate_lpips (net {net}) needs torchvision's ImageNet weights {path}, which does not "
                        f"exist; put {os.path.basename(path)} there (on a machine with network access: python -c "
                        f"\"import torchvision; torchvision.models.{_BACKBONES[net]}(weights='IMAGENET1K_V1')\"), "
                        "or remove the metric")
    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)  # backbone loaded below
    backbone = safe_load(path, key=f"calculate_lpips backbone ({net})")
    own = model.net.state_dict()
    # The package splits torchvision's `features` into slices that keep the module indices:
    # slice2.3.weight is features.3.weight.
    wanted = {key: re.sub(r"^slice\d+\.", "features.", key) for key in own}
    missing = [source for source in wanted.values() if not isinstance(backbone.get(source), torch.Tensor)]
    if missing:
        raise UserError(f"calculate_lpips: {path} is not torchvision's {_BACKBONES[net]} (no {missing[0]})")
    model.net.load_state_dict({key: backbone[source] for key, source in wanted.items()})
    return model.eval().requires_grad_(False)


@METRIC_REGISTRY.register(aliases=("lpips",))
@torch.no_grad()
def calculate_lpips(img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0,
                    net: Literal["alex", "vgg", "squeeze"] = "alex") -> float:
    """LPIPS between two uint8 (C, H, W) RGB images (0: identical); BasicSR-style ``crop_border``."""
    if img.shape != img2.shape:
        raise ValueError(f"calculate_lpips: images differ in shape {tuple(img.shape)} vs {tuple(img2.shape)}")
    if crop_border:
        img = img[..., crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[..., crop_border:-crop_border, crop_border:-crop_border]
    model = lpips_model(net)

    def scaled(x: torch.Tensor) -> torch.Tensor:
        return (x.to(torch.float32) / 255.0 * 2 - 1).unsqueeze(0)

    try:
        return float(model(scaled(img), scaled(img2)).mean())
    except RuntimeError as exc:  # the backbone's pooling leaves nothing of a small image
        raise ValueError(f"calculate_lpips: a {img.shape[-1]}x{img.shape[-2]} image (after crop_border) is too small "
                         f"for the {net} backbone ({first_line(exc)})") from exc


calculate_lpips.option_spec = MetricSpec(better="lower")  # BasicSR's `better`: LPIPS is a distance
