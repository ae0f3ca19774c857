"""Architecture tests: checkpoint compatibility with BasicSR/Real-ESRGAN, output shapes, argument validation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import framework.archs  # noqa: F401  (fills ARCH_REGISTRY)
from framework.errors import UserError
from framework.registry import ARCH_REGISTRY

REFERENCE = json.loads((Path(__file__).parent / "reference" / "arch-keys.json").read_text())["entries"]


def _entry_id(entry: dict) -> str:
    return entry["arch"] + "-" + "-".join(f"{k}={v}" for k, v in entry["kwargs"].items() if not isinstance(v, list))


@pytest.mark.parametrize("entry", REFERENCE, ids=[_entry_id(e) for e in REFERENCE])
def test_state_dict_matches_reference(entry: dict) -> None:
    """Names, shapes and order must equal the published layout, or pretrained weights won't load strictly."""
    net = ARCH_REGISTRY.get(entry["arch"])(**entry["kwargs"])
    got = [[name, list(t.shape)] for name, t in net.state_dict().items()]
    assert got == entry["state_dict"]
    assert sum(p.numel() for p in net.parameters()) == entry["num_params"]


def _tiny(arch: str, scale: int) -> torch.nn.Module:
    kwargs = {
        "MSRResNet": dict(num_feat=8, num_block=2, upscale=scale),
        "EDSR": dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=scale, res_scale=0.1),
        "RRDBNet": dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, num_grow_ch=4, scale=scale),
        "SRVGGNetCompact": dict(num_feat=8, num_conv=2, upscale=scale),
    }[arch]
    return ARCH_REGISTRY.get(arch)(**kwargs)


SHAPE_CASES = [(a, s) for a in ("MSRResNet", "EDSR", "SRVGGNetCompact") for s in (2, 3, 4)]
SHAPE_CASES += [("RRDBNet", s) for s in (1, 2, 4)]


@pytest.mark.parametrize("arch,scale", SHAPE_CASES)
def test_forward_shape(arch: str, scale: int) -> None:
    net = _tiny(arch, scale).eval()
    x = torch.rand(1, 3, 12, 12)
    before = x.clone()
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 3, 12 * scale, 12 * scale)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert torch.equal(x, before), "forward must not modify its input in place"


@pytest.mark.parametrize("act_type", ["prelu", "relu", "lrelu", "leakyrelu"])
def test_srvgg_activations(act_type: str) -> None:
    net = ARCH_REGISTRY.get("SRVGGNetCompact")(num_feat=8, num_conv=1, upscale=2, act_type=act_type)
    with torch.no_grad():
        assert net(torch.rand(1, 3, 6, 6)).shape == (1, 3, 12, 12)
    has_act_weights = any(k.endswith(".weight") and v.dim() == 1 for k, v in net.state_dict().items())
    assert has_act_weights == (act_type == "prelu")


@pytest.mark.parametrize("arch,kwargs,needle", [
    ("MSRResNet", dict(upscale=5), "MSRResNet: upscale must be one of 2, 3, 4, got 5"),
    ("MSRResNet", dict(upscale=8), "upscale"),
    ("EDSR", dict(num_in_ch=3, num_out_ch=3, upscale=5), "EDSR: upscale"),
    ("EDSR", dict(num_in_ch=3, num_out_ch=3, rgb_mean=(0.5, 0.5)), "rgb_mean"),
    ("RRDBNet", dict(num_in_ch=3, num_out_ch=3, scale=3), "RRDBNet: scale must be one of 1, 2, 4, got 3"),
    ("SRVGGNetCompact", dict(upscale=0), "SRVGGNetCompact: upscale"),
    ("SRVGGNetCompact", dict(act_type="gelu"), "act_type"),
    ("MSRResNet", dict(num_feat=0), "num_feat"),
    ("MSRResNet", dict(num_block=2.5), "num_block"),
])
def test_bad_arguments_raise_user_error(arch: str, kwargs: dict, needle: str) -> None:
    with pytest.raises(UserError) as info:
        ARCH_REGISTRY.get(arch)(**kwargs)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_rrdbnet_unshuffle_needs_divisible_input() -> None:
    net = _tiny("RRDBNet", 1)
    with pytest.raises(UserError, match="divisible by 4"):
        net(torch.rand(1, 3, 10, 12))


def test_edsr_mean_is_not_state() -> None:
    """Published EDSR checkpoints carry no mean tensor, so it must be neither a parameter nor a buffer."""
    net = _tiny("EDSR", 2)
    assert not any("mean" in name for name in net.state_dict())
    assert not any("mean" in name for name, _ in net.named_buffers())


@pytest.mark.parametrize("arch,scale", [("MSRResNet", 4), ("EDSR", 3), ("RRDBNet", 2), ("SRVGGNetCompact", 4)])
def test_state_dict_round_trip_strict(arch: str, scale: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = _tiny(arch, scale).eval()
    path = tmp_path / "net.pth"
    torch.save(src.state_dict(), path)
    torch.manual_seed(1)
    dst = _tiny(arch, scale).eval()
    dst.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


def test_scaled_init_keeps_residual_branches_small() -> None:
    """SRResNet-style nets start near the bilinear baseline thanks to the 0.1-scaled Kaiming init."""
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get("MSRResNet")(num_feat=16, num_block=2, upscale=2).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        base = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        assert (net(x) - base).abs().mean() < 0.05
