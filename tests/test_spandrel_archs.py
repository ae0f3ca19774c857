"""Every registered spandrel network trains, resumes bit for bit, and what it writes reopens in spandrel by
auto-detection as the same network (same output, same scale); every preset builds and takes a training step."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from framework.archs.presets import PRESETS
from framework.archs.spandrel_arch import SPANDREL_NETWORKS
from framework.data.example_data import generate_example_data
from framework.network_spec import input_minimum, input_multiple
from framework.options import load_options
from framework.registry import ARCH_REGISTRY
from framework.schema import Component

from .spandrel_nets import TINY, scale_of
from .test_model_contract import assert_same_final_state
from .tinyrun import load, tiny_options, train_in_process

spandrel = pytest.importorskip("spandrel")


def test_every_registered_spandrel_network_has_a_tiny_configuration() -> None:
    assert sorted(TINY) == sorted(SPANDREL_NETWORKS)


def _options(workdir: Path, name: str, run: str) -> Path:
    """2 iterations of ``name`` on 2 images whose LR side fits its windows and minimum; no validation."""
    scale = scale_of(name)
    component = Component(name, TINY[name])
    multiple = input_multiple(component)
    lq = max(16, multiple, input_minimum(component))
    lq = -(-lq // multiple) * multiple
    data = workdir / f"data_{lq}_x{scale}"
    if not data.exists():
        generate_example_data(data, scale=max(scale, 2), num_train=2, num_val=1, size=lq * max(scale, 2))
    opt = tiny_options(data, name=run)
    train = opt["datasets"]["train"]
    train.update(gt_size=lq * scale, batch_size_per_gpu=2)
    if scale == 1:  # restoration: the HR images are input and target
        train["dataroot_lq"] = train["dataroot_gt"]
    else:
        train["dataroot_lq"] = str(data / "train" / f"LR_x{scale}")
    del opt["datasets"]["val"], opt["val"]
    opt.update(scale=scale, network_g={"type": name, **TINY[name]})
    opt["train"].update(total_iter=2, warmup_iter=0, ema_decay=0.5)
    opt["train"]["scheduler"]["milestones"] = [1]
    opt["logger"].update(save_checkpoint_freq=100, print_freq=1)
    path = workdir / f"{run}.yml"
    path.write_text(yaml.safe_dump(opt))
    return path


# Real-CUGAN's U-Nets (1.3M parameters, 32-40 px inputs at the least) take 25-35 s each here.
_SLOW = {"UpCunet2x", "UpCunet2x_fast", "UpCunet3x", "UpCunet4x"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n for n in sorted(TINY)])
def test_trains_resumes_bitwise_and_reopens_in_spandrel(workdir: Path, name: str) -> None:
    full, part = _options(workdir, name, "full"), _options(workdir, name, "part")
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=1"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "full", "part", 2, ("networks", "ema", "optimizers", "schedulers"))

    pth = workdir / "weights" / "full_iter_2.pth"
    descriptor = spandrel.ModelLoader().load_from_file(str(pth))
    options = load_options(str(full))
    assert descriptor.scale == options.scale
    ours = options.network_g.build(ARCH_REGISTRY)
    ours.load_state_dict(load(pth)["params"])
    ours.eval()
    theirs = descriptor.model.eval()
    size = max(16, ours.input_multiple, ours.input_minimum)
    size = -(-size // ours.input_multiple) * ours.input_multiple
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(image.clone()) - theirs(image.clone())).abs().max().item()
    assert diff <= 1e-5, diff


def test_a_batch_the_network_cannot_train_on_is_an_option_error(workdir: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """DAT's channel attention batch-normalises pooled features: a batch of 1 fails inside the network, so it
    is refused with the options, naming the key; the smallest batch it takes trains."""
    net = Component("DAT", TINY["DAT"]).build(ARCH_REGISTRY).train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        net(torch.rand(1, 3, 16, 16))
    opt = _options(workdir, "DAT", "b1")
    capsys.readouterr()
    assert train_in_process(opt, ["datasets.train.batch_size_per_gpu=1"]) == 2
    err = capsys.readouterr().err
    assert "datasets.train.batch_size_per_gpu: DAT trains on batches of at least 2" in err and "Traceback" not in err
    assert not (workdir / "weights").exists() and not (workdir / "experiments").exists()
    assert train_in_process(opt, ["datasets.train.batch_size_per_gpu=2", "train.total_iter=1"]) == 0


def _preset_step(name: str, scale: int = 2) -> int:
    """Resolve ``name`` as an options file would, build it, one forward/backward on a small input; parameters."""
    from framework.network_spec import resolve_scale
    from framework.schema import build_component

    problems: list = []
    component = build_component({"type": name}, ARCH_REGISTRY, (), ("network_g",), problems)
    assert component is not None and component.preset == name
    component = resolve_scale(component, scale, "network_g", problems)
    assert not problems
    torch.manual_seed(0)
    net = component.build(ARCH_REGISTRY)
    multiple = getattr(net, "input_multiple", 1)
    size = -(-max(16, getattr(net, "input_minimum", 1)) // multiple) * multiple
    out = net(torch.rand(2, 3, size, size))  # 2: batch norm in channel attention needs more than one value
    assert out.shape == (2, 3, size * scale, size * scale)
    out.mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    return sum(p.numel() for p in net.parameters())


# Under 2.5M parameters and no 16-pixel attention windows: a step takes about a second on a CPU core.
SMALL = {"compact", "ultracompact", "superultracompact", "span", "span_s", "span_f32", "dat_light", "swinir_s",
         "omnisr", "plksr_tiny", "realplksr_tiny", "safmn"}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_preset_builds_and_takes_a_step(name: str) -> None:
    assert _preset_step(name) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(PRESETS) - SMALL))
def test_each_large_preset_builds_and_takes_a_step(name: str) -> None:
    assert _preset_step(name) > 0


def test_inference_pads_a_window_network_and_computes_its_output(tmp_path: Path) -> None:
    """scripts/inference.py's path (load_network + Upscaler) on a window network and an image whose sides are
    not multiples of its window: padded, cut back, and equal to the network on the padded image."""
    from framework.inference import Upscaler, load_network
    from torch.nn import functional as F

    from .tinynets import save_pth

    torch.manual_seed(0)
    network_g = {**TINY["SwinIR"], "upscale": 2}
    net = ARCH_REGISTRY.get("SwinIR")(**network_g).eval()
    path = save_pth(tmp_path / "swinir.pth", params=net)
    arch = ["SwinIR", *(f"{k}={v}" for k, v in network_g.items())]
    deployed = load_network(str(path), arch=arch)
    assert deployed.input_multiple == 4 and deployed.scale == 2
    image = torch.rand(1, 3, 13, 18, generator=torch.Generator().manual_seed(2))
    out = Upscaler(deployed, torch.device("cpu"))(image)
    with torch.no_grad():
        expected = net(F.pad(image, (0, 2, 0, 3), mode="reflect"))[..., :26, :36]
    assert out.shape == (1, 3, 26, 36) and (out - expected).abs().max().item() <= 1e-6


@pytest.mark.parametrize("redux_name, spandrel_name", [("pixelshuffle", "ps"), ("dysample", "dys"),
                                                       ("geoensemblepixelshuffle", "gps")])
def test_mosr_takes_traiNNer_redux_upsampler_names(redux_name: str, spandrel_name: str) -> None:
    """traiNNer-redux spells MoSR's upsamplers out; they build the network spandrel's short names build."""
    arguments = {**TINY["MoSR"], "upscale": 2}
    torch.manual_seed(0)
    ours = ARCH_REGISTRY.get("MoSR")(**arguments, upsampler=redux_name)
    torch.manual_seed(0)
    theirs = ARCH_REGISTRY.get("MoSR")(**arguments, upsampler=spandrel_name)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))
    assert type(ours.upsampler) is type(theirs.upsampler)
