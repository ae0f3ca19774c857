"""Tiny networks of the four architectures, their weight files (.pth, .pt) and test images, for the deployment
tests (inference, ONNX export, spandrel)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping

import torch
import yaml
from torch import nn

from framework.archs import EDSR, MSRResNet, RRDBNet, SRVGGNetCompact
from framework.checkpoint.format import training_state
from framework.checkpoint.io import atomic_save
from framework.data.example_data import render_image
from framework.models.sr_model import SRModel
from framework.options import load_options

from .tinyrun import tiny_options

# network_g blocks: small enough for a CPU test, every layer kind of the real ones.
NETWORKS: Dict[str, Dict[str, Any]] = {
    "RRDBNet_x2": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 2, "num_feat": 8, "num_block": 1,
                   "num_grow_ch": 4},
    "RRDBNet_x4": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 8, "num_block": 1,
                   "num_grow_ch": 4},
    "SRVGGNetCompact_x4": {"type": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2, "upscale": 4},
    "MSRResNet_x2": {"type": "MSRResNet", "num_feat": 8, "num_block": 1, "upscale": 2},
    "EDSR_x3": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "upscale": 3},
}
CLASSES = {"RRDBNet": RRDBNet, "SRVGGNetCompact": SRVGGNetCompact, "MSRResNet": MSRResNet, "EDSR": EDSR}


def build(network_g: Mapping[str, Any], seed: int = 0) -> nn.Module:
    """The network of a ``network_g`` block, with weights from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    args = {k: v for k, v in network_g.items() if k != "type"}
    net = CLASSES[network_g["type"]](**args)
    with torch.no_grad():  # make every parameter matter (PReLU slopes, biases start as constants)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return net.eval()


def arch_args(network_g: Mapping[str, Any]) -> List[str]:
    """``--arch TYPE KEY=VALUE ...`` for a ``network_g`` block."""
    return [network_g["type"], *(f"{k}={v}" for k, v in network_g.items() if k != "type")]


def scale_of(network_g: Mapping[str, Any]) -> int:
    return int(network_g.get("scale", network_g.get("upscale", 4)))


def save_pth(path: Path, **entries: nn.Module) -> Path:
    """A .pth as the trainer writes it (``params=net``), or with other entries (``params_ema=...``)."""
    atomic_save({key: net.state_dict() for key, net in entries.items()}, str(path))
    return path


def options_yaml(folder: Path, network_g: Mapping[str, Any], **changes: Any) -> Path:
    """The tiny training options with this network (and its scale); ``changes``: top-level keys."""
    opt = tiny_options(folder / "data")
    opt["network_g"] = dict(network_g)
    opt["scale"] = scale_of(network_g)
    opt.update(changes)
    path = folder / f"options_{network_g['type']}.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False), encoding="utf-8")
    return path


def save_pt(folder: Path, network_g: Mapping[str, Any], ema: bool = True) -> Dict[str, Any]:
    """A full training checkpoint (.pt) of this network, as the trainer writes it, with distinct network and
    EMA weights; returns ``{'path', 'net', 'ema'}`` (the two networks)."""
    options_path = options_yaml(folder, network_g)
    raw = yaml.safe_load(options_path.read_text())
    raw["train"]["ema_decay"] = 0.9 if ema else 0.0
    options_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    options = load_options(str(options_path))
    model = SRModel(options, torch.device("cpu"))
    net, ema_net = build(network_g, seed=1), build(network_g, seed=2)
    model.net_g.load_state_dict(net.state_dict())
    if ema:
        model.emas["net_g"].load_state_dict(ema_net.state_dict())
    state = training_state(iteration=4, epoch=1, data_position={"epoch": 1, "batches_done": 0},
                           model=model.state_dict(), best={}, options=options.to_dict(), rng={})
    path = folder / f"{network_g['type']}_iter_4.pt"
    atomic_save(state, str(path))
    return {"path": path, "net": net, "ema": ema_net}


def sample_image(height: int = 45, width: int = 61, seed: int = 7) -> torch.Tensor:
    """A float (1, 3, H, W) image with edges, text and textures (odd sizes by default)."""
    size = max(height, width)
    return render_image(size, 2, torch.Generator().manual_seed(seed))[None, :, :height, :width].contiguous()
