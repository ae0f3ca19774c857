"""Deployment: a network with its weights (from a `.pth` or a `.pt`), and upscaling of real images with it.

:func:`load_network` finds the network (the options saved in a `.pt`, an options file's ``network_g``, or
``--arch TYPE KEY=VALUE ...``), picks the weights (``params_ema`` before ``params``) and refuses weights that
do not fit, naming the keys. :class:`Upscaler` runs it on images of any size, in overlapping tiles whose
margins are cut off (so the seams vanish), in fp32, fp16 or bf16, and handles the channels real files have:
gray, alpha, 8 or 16 bits. Used by ``scripts/inference.py`` and ``scripts/checkpoint.py export --onnx``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import yaml
from torch import nn
from torch.nn import functional as F

from .checkpoint.format import TRAINING_STATE
from .checkpoint.weights import read_weights_file, saved_network, select_weights
from .data.image_io import to_float, to_integer
from .device import device_named
from .errors import UserError, first_line
from .models.base import LoadReport
from .network_spec import full_arguments, input_channels, scale_argument
from .options import load_options
from .registry import ARCH_REGISTRY
from .schema import Component, Problem, build_component, path_str, signature_params
from .tiling import ProgressFn, Window, input_minimum, input_multiple, round_up, run_tiled, tile_windows

logger = logging.getLogger(__name__)

# Inference takes the EMA weights when a file has them: they are the ones validation measured.
INFERENCE_KEYS = ("params_ema", "params")
PRECISIONS: Dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ALPHA_MODES = ("network", "resize")
_LUMA = (0.299, 0.587, 0.114)  # BT.601 weights of R, G, B (what image viewers and OpenCV use for gray)


@dataclass
class DeployNetwork:
    """A network with its weights loaded, in eval mode on the CPU in float32, and what inference needs to know."""

    net: nn.Module
    component: Component
    scale: int
    in_channels: int
    out_channels: int
    input_multiple: int  # height and width must be multiples of this (RRDBNet x2 / x1 pixel-unshuffle)
    source: str  # where the network's description came from, for messages
    ema: bool  # the weights are EMA weights (``params_ema`` or a `.pt`'s EMA copy)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.component.kwargs.items())
        return f"{self.component.type}({args}) x{self.scale}"

    def parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


def parse_arch(arch: Sequence[str]) -> Component:
    """``['RRDBNet', 'num_block=6', 'scale=2']`` -> the checked component; values are read as YAML.

    ``num_in_ch`` and ``num_out_ch`` default to 3 (RGB) where the network requires them.
    """
    if not arch:
        raise UserError("--arch: give the network type, then its arguments as KEY=VALUE")
    type_, *pairs = arch
    raw: Dict[str, Any] = {"type": type_}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--arch {type_}: '{pair}' is not KEY=VALUE (e.g. num_block=6)")
        try:
            raw[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise UserError(f"--arch {type_}: {pair}: the value is not valid YAML "
                            f"({getattr(exc, 'problem', exc)})") from exc
    if type_ in ARCH_REGISTRY:
        params, _, _ = signature_params(ARCH_REGISTRY.get(type_))
        for name in ("num_in_ch", "num_out_ch"):
            if name in params and params[name].default is params[name].empty and name not in raw:
                raw[name] = 3
    return _component(raw, ("--arch",), f"--arch {type_}")


def _component(raw: Any, path: Tuple[str, ...], where: str) -> Component:
    """A ``{type: X, ...}`` network block checked like ``network_g`` in an options file."""
    problems: List[Problem] = []
    component = build_component(raw, ARCH_REGISTRY, (), path, problems)
    if problems or component is None:
        parts = []
        for p in problems:
            key = p.path[len(path):]
            parts.append(f"{where}: {path_str(key)}: {p.message}" if key else f"{where}: {p.message}")
        raise UserError("; ".join(parts))
    return component


def _construct(component: Component, where: str) -> nn.Module:
    try:
        return component.build(ARCH_REGISTRY)
    except (UserError, ValueError, TypeError) as exc:
        raise UserError(f"{where}: {first_line(exc)}") from exc


def load_network(weights: Optional[str], *, options_file: Optional[str] = None, arch: Sequence[str] = (),
                 param_key: Optional[str] = None, weights_option: str = "--weights",
                 key_option: str = "--param-key") -> DeployNetwork:
    """The network ``weights`` were trained for, with them loaded (strictly).

    The network comes from ``arch`` (``--arch``), else ``options_file`` (``network_g`` and ``scale``; its
    ``path.pretrain_path`` when ``weights`` is None), else the options saved in a `.pt`. ``param_key`` picks
    the entry of a `.pth` (default: ``params_ema``, then ``params``, then the only one); for a `.pt`,
    ``params`` means the raw network instead of its EMA copy. Weights that do not fit are a one-line
    :class:`UserError` naming the keys (and, where another scale fits them, that scale).
    """
    options = load_options(options_file, require_train=False) if options_file else None
    if weights is None:
        if options is None or not options.path.pretrain_path:
            hint = f" or set path.pretrain_path in {options_file}" if options_file else ""
            raise UserError(f"{weights_option}: no weights given; name a .pth or .pt file{hint}")
        weights = options.path.pretrain_path
        weights_option = f"{options_file}: path.pretrain_path"
    obj = read_weights_file(weights, key=weights_option)
    keys = [param_key] if param_key else list(INFERENCE_KEYS)
    state, entry = select_weights(obj, weights, keys, option=weights_option, key_option=key_option)
    expected_scale: Optional[int] = None
    if arch:
        component, source = parse_arch(arch), "--arch"
    elif options is not None:
        component, expected_scale, source = options.network_g, options.scale, f"network_g of {options_file}"
    elif isinstance(obj, dict) and obj.get("kind") == TRAINING_STATE:
        saved = obj["options"]
        source = f"the options saved in {weights}"
        component = _component(saved.get("network_g"), ("network_g",), f"{weights}: saved network_g")
        expected_scale = saved.get("scale") if isinstance(saved.get("scale"), int) else None
    elif (recorded := saved_network(weights, weights_option)) is not None:
        source = f"the metadata of {weights}"
        component = _component(recorded[0], ("network_g",), f"{weights}: recorded network_g")
        expected_scale = recorded[1]
    else:
        raise UserError(f"{weights_option} {weights}: a .pth holds weights only, not which network they are for "
                        "(so does a .safetensors from another tool); name it with -opt OPTIONS.yml (its network_g) "
                        "or --arch TYPE KEY=VALUE ... (e.g. --arch RRDBNet num_block=23 scale=4)")
    net = _construct(component, source)
    report = LoadReport.compare(net.state_dict(), state)
    if report.lines():
        raise UserError(f"{weights}: the weights do not fit {component.type} of {source}: "
                        + "; ".join(report.lines()) + _fitting_scale(component, state)
                        + "; give the network they were trained with")
    net.load_state_dict(state)
    net.eval()
    return _probe(net, component, source, expected_scale, ema=entry in ("params_ema", "ema"))


def _fitting_scale(component: Component, state: Mapping[str, torch.Tensor]) -> str:
    """`` (they fit scale=4)`` when the same network with another scale takes the weights (built on the meta
    device: shapes only, no memory, no initialisation cost)."""
    cls = ARCH_REGISTRY.get(component.type)
    arg = scale_argument(cls)
    if arg is None:
        return ""
    current = full_arguments(component).get(arg)
    for value in (1, 2, 3, 4, 8):
        if value == current:
            continue
        try:
            with torch.device("meta"):
                other = cls(**{**dict(component.kwargs), arg: value})
        except (UserError, ValueError, TypeError, RuntimeError, NotImplementedError):
            continue
        if not LoadReport.compare(other.state_dict(), state).lines():
            return f" (they fit {arg}={value}, not {arg}={current})"
    return ""


def _probe(net: nn.Module, component: Component, source: str, expected_scale: Optional[int],
           ema: bool) -> DeployNetwork:
    """Run a tiny input through the network: its scale and output channels, checked against the options."""
    in_ch = input_channels(component)
    multiple = input_multiple(net)
    size = round_up(max(4 * multiple, input_minimum(net)), multiple)
    try:
        with torch.inference_mode():
            out = net(torch.zeros(1, in_ch, size, size))
    except (UserError, RuntimeError) as exc:
        raise UserError(f"{component.type} of {source}: a {in_ch}-channel {size}x{size} input fails "
                        f"({first_line(exc)})") from exc
    scale = out.shape[-1] // size
    if out.dim() != 4 or scale < 1 or tuple(out.shape[-2:]) != (size * scale, size * scale):
        raise UserError(f"{component.type} of {source}: turns {size}x{size} into {tuple(out.shape)}, not an "
                        "image upscaled by a whole factor")
    if expected_scale is not None and scale != expected_scale:
        raise UserError(f"{component.type} of {source}: upscales x{scale} but scale is {expected_scale}; make "
                        "the network's scale argument match scale")
    return DeployNetwork(net, component, scale, in_ch, int(out.shape[1]), multiple, source, ema)


def select_device(name: str) -> torch.device:
    """``auto``: CUDA when available."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device cuda: no CUDA device is available (torch {torch.__version__}); use auto or cpu")
    return device_named(name)


# ------------------------------------------------------------------------------------------------ tiling


class Upscaler:
    """Runs a :class:`DeployNetwork` on images of any size: whole, or in tiles (``tile`` input pixels a side,
    ``tile_pad`` pixels of context each side, ``batch`` tiles per forward pass), on ``device`` in
    ``precision``, optionally channels-last."""

    def __init__(self, network: DeployNetwork, device: torch.device, *, precision: str = "fp32",
                 channels_last: bool = False, tile: int = 0, tile_pad: int = 32, batch: int = 1) -> None:
        if precision not in PRECISIONS:
            raise UserError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and device.type != "cuda":
            raise UserError("--precision fp16: needs a CUDA device (float16 convolutions are slow or missing on "
                            "the CPU); use bf16 or fp32 there")
        for name, value, low in (("--tile", tile, 0), ("--tile-pad", tile_pad, 0), ("--batch", batch, 1)):
            if value < low:
                raise UserError(f"{name} {value}: must be >= {low}")
        self.network = network
        self.device = device
        self.dtype = PRECISIONS[precision]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.tile = round_up(tile, network.input_multiple)
        self.tile_pad = round_up(tile_pad, network.input_multiple)
        self.batch = batch
        self.net = network.net.to(device=device, dtype=self.dtype).to(memory_format=self.memory_format)

    def windows(self, height: int, width: int) -> List[Tuple[Window, Window]]:
        """The tiles of a (padded) image: pairs of (rows, columns) windows, row by row."""
        return tile_windows(height, width, self.tile, self.tile_pad)

    @torch.inference_mode()
    def __call__(self, img: torch.Tensor, progress: Optional[ProgressFn] = None) -> torch.Tensor:
        """(N, C, H, W) float in [0, 1] on the CPU -> the network's (N, C', sH, sW) float32 output on the CPU."""
        return run_tiled(self._forward, img, scale=self.network.scale, multiple=self.network.input_multiple,
                         minimum=input_minimum(self.network.net), tile=self.tile, pad=self.tile_pad,
                         batch=self.batch, progress=progress)

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(device=self.device, dtype=self.dtype).contiguous(memory_format=self.memory_format)
        return self.net(x).to(device="cpu", dtype=torch.float32)

    def image(self, raw: torch.Tensor, alpha: str = "network",
              progress: Optional[ProgressFn] = None) -> torch.Tensor:
        """An integer (C, H, W) image as decoded (gray, gray + alpha, RGB, RGBA; 8 or 16 bits) -> the upscaled
        image with the same channels and bit depth.

        Gray images go through an RGB network as three equal channels and come back as their luma. The alpha
        channel is upscaled by the network like a gray image (``alpha='network'``) or bicubically
        (``'resize'``); a fully opaque one stays opaque without either.
        """
        if alpha not in ALPHA_MODES:
            raise UserError(f"--alpha {alpha}: choose one of {', '.join(ALPHA_MODES)}")
        channels = raw.shape[0]
        has_alpha = channels in (2, 4)
        colour = raw[:channels - 1] if has_alpha else raw
        out = self._colour(to_float(colour)[None], progress)
        if has_alpha:
            plane = raw[channels - 1:]
            top = torch.iinfo(raw.dtype).max
            size = out.shape[-2:]
            if bool((plane == top).all()):
                upscaled = torch.ones(1, 1, *size)
            elif alpha == "resize":
                upscaled = F.interpolate(to_float(plane)[None], size=size, mode="bicubic", align_corners=False)
            else:
                upscaled = self._colour(to_float(plane)[None], progress)
            out = torch.cat([out, upscaled], dim=1)
        return to_integer(out[0], raw.dtype)

    def _colour(self, x: torch.Tensor, progress: Optional[ProgressFn]) -> torch.Tensor:
        """The network's output for a (1, C, H, W) gray or RGB image, with C channels again."""
        channels, wanted = x.shape[1], self.network.in_channels
        if channels == wanted:
            y = self(x, progress)
        elif channels == 1 and wanted == 3:
            y = self(x.expand(-1, 3, -1, -1), progress)
        elif channels == 3 and wanted == 1:
            y = self(luma(x), progress)
        else:
            raise UserError(f"the network takes {wanted}-channel images, this one has {channels} channel(s)")
        return luma(y) if channels == 1 and y.shape[1] == 3 else y


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) gray with BT.601 weights."""
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)
