"""Our .pth files in spandrel, the loader chaiNNer and ComfyUI use: it recognises RRDBNet and SRVGGNetCompact
and computes what we compute.

It builds RRDBNet with 32 growth channels and
SRVGGNetCompact with PReLU, as the published models have them, so the tiny networks here keep those.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from framework.cli import run_main
from framework.inference import Upscaler, load_network
from framework.tools.checkpoint_tool import main as checkpoint_main

from .tinynets import arch_args, build, sample_image, save_pt, save_pth

spandrel = pytest.importorskip("spandrel")

NETWORKS = {
    "RRDBNet_x4": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 8, "num_block": 1,
                   "num_grow_ch": 32},
    "RRDBNet_x2": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 2, "num_feat": 8, "num_block": 2,
                   "num_grow_ch": 32},
    "RRDBNet_x1": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 1, "num_feat": 8, "num_block": 1,
                   "num_grow_ch": 32},
    "SRVGGNetCompact_x4": {"type": "SRVGGNetCompact", "num_feat": 8, "num_conv": 3, "upscale": 4},
    "SRVGGNetCompact_x2": {"type": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2, "upscale": 2},
}
ARCHITECTURES = {"RRDBNet": "ESRGAN", "SRVGGNetCompact": "Compact"}


def compare(path: Path, net: torch.nn.Module, network_g: dict) -> float:
    """Load ``path`` in spandrel; its raw network against ours, and its clamped call against our inference."""
    descriptor = spandrel.ModelLoader().load_from_file(str(path))
    assert descriptor.architecture.id == ARCHITECTURES[network_g["type"]]
    assert descriptor.scale == network_g.get("scale", network_g.get("upscale"))
    descriptor.model.eval()
    image = sample_image(24, 32)
    with torch.no_grad():
        ours, theirs = net(image), descriptor.model(image)
        theirs_clamped = descriptor(image)
    ours_deployed = Upscaler(load_network(str(path), arch=arch_args(network_g)), torch.device("cpu"))(image)
    assert (ours_deployed - ours).abs().max().item() == 0
    assert (theirs_clamped - ours.clamp(0, 1)).abs().max().item() <= 1e-5
    return (theirs - ours).abs().max().item()


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_spandrel_loads_our_pth_and_computes_our_output(tmp_path: Path, name: str) -> None:
    network_g = NETWORKS[name]
    net = build(network_g)
    diff = compare(save_pth(tmp_path / f"{name}.pth", params=net), net, network_g)
    print(f"{name}: spandrel vs ours max |difference| {diff:.2e}")
    assert diff <= 1e-5


def test_the_exported_pth_of_a_training_checkpoint(tmp_path: Path) -> None:
    """The path users take: a .pt exported by scripts/checkpoint.py; spandrel, like our inference, takes the
    EMA weights of a .pth holding both."""
    network_g = NETWORKS["RRDBNet_x4"]
    saved = save_pt(tmp_path, network_g)
    assert run_main(checkpoint_main, ["export", str(saved["path"])]) == 0
    assert compare(tmp_path / "RRDBNet_iter_4_ema.pth", saved["ema"], network_g) <= 1e-5
    both = save_pth(tmp_path / "both.pth", params=saved["net"], params_ema=saved["ema"])
    assert compare(both, saved["ema"], network_g) <= 1e-5
