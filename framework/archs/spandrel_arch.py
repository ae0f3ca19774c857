"""The networks of spandrel (the library chaiNNer, ComfyUI and traiNNer-redux load models with), registered under
spandrel's class names with their constructor arguments as the option schema.

Each registered class is a thin subclass of spandrel's: same ``__init__`` arguments, same module names (so the
``.pth`` we write reopens in spandrel by auto-detection), plus what the trainer needs declared rather than
guessed: which argument is the scale (``scale_argument``; ``fixed_scale`` for a network with one scale), the
input multiple its windows tile exactly (``input_multiple``, an attribute of the built network, as for RRDBNet),
and the smallest input it takes (``input_minimum``). Arguments whose defaults are Python classes or functions
(``norm_layer``, ``act_layer``, ``conv``) cannot be written in YAML and are left out of the schema; arguments
without a type hint take the type of their default, so a mistyped value is an option error like any other.

What spandrel provides but is not registered, and why, is in :data:`LEFT_OUT` (docs/networks.md lists it).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import math
import typing
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import nn

from ..registry import ARCH_REGISTRY
from ..schema import ComponentSpec, Path_, Problem

Kwargs = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one spandrel class is registered."""

    module: str  # spandrel.architectures.<module>
    cls: str  # the class's name in that module
    scale_argument: Optional[str] = None  # the constructor argument that is the scale, None: fixed_scale
    fixed_scale: Optional[int] = None
    multiple: Callable[[Kwargs], int] = lambda kw: 1  # input multiple, from the full arguments
    minimum: int = 1  # smallest input side
    batch_minimum: int = 1  # smallest training batch (2: batch norm over pooled features)
    name: str = ""  # registered name ("" = the class's name)
    channel_defaults: Tuple[str, ...] = ()  # required channel arguments that default to 3 (RGB) here
    mutates_input: bool = False  # its forward scales its input in place: it gets a copy
    # Other spellings of an argument's values (traiNNer-redux's), translated before spandrel sees them.
    value_aliases: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


def _lcm_of(*names: str) -> Callable[[Kwargs], int]:
    """The lcm of integer arguments and the items of list arguments (window and stripe sizes)."""
    def multiple(kw: Kwargs) -> int:
        values: List[int] = []
        for name in names:
            value = kw[name]
            values.extend(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]) if v)
        return math.lcm(*values) if values else 1
    return multiple


# traiNNer-redux's names of MoSR's upsamplers (its mosr builder translates them the same way).
_MOSR_UPSAMPLERS = {"pixelshuffle": "ps", "dysample": "dys", "geoensemblepixelshuffle": "gps"}

SPECS: Tuple[Spec, ...] = (
    Spec("SPAN", "SPAN", "upscale", channel_defaults=("num_in_ch", "num_out_ch")),
    Spec("DAT", "DAT", "upscale", multiple=_lcm_of("split_size"), minimum=16, batch_minimum=2),
    Spec("SwinIR", "SwinIR", "upscale", multiple=_lcm_of("window_size")),
    Spec("Swin2SR", "Swin2SR", "upscale", multiple=_lcm_of("window_size"), minimum=16),
    Spec("HAT", "HAT", "upscale", multiple=_lcm_of("window_size"), minimum=16),
    Spec("OmniSR", "OmniSR", "up_scale", multiple=_lcm_of("window_size"), minimum=16),
    Spec("PLKSR", "PLKSR", "upscaling_factor"),
    Spec("PLKSR", "RealPLKSR", "upscaling_factor"),
    Spec("RCAN", "RCAN", "scale", mutates_input=True),
    Spec("SAFMN", "SAFMN", "upscaling_factor", multiple=lambda kw: 8),
    Spec("DRCT", "DRCT", "upscale", multiple=_lcm_of("window_size")),
    Spec("ATD", "ATD", "upscale", multiple=_lcm_of("window_size"), minimum=8),
    Spec("RGT", "RGT", "upscale", multiple=_lcm_of("split_size"), minimum=16),
    Spec("CRAFT", "CRAFT", "upscale", multiple=_lcm_of("window_size", "split_size_0", "split_size_1"), minimum=16),
    Spec("DITN", "DITN_Real", "upscale", multiple=_lcm_of("patch_size")),
    Spec("DCTLSA", "DCTLSA", "upscale", minimum=16),
    Spec("SeemoRe", "SeemoRe", "scale", minimum=16),
    Spec("MoSR", "MoSR", "upscale", value_aliases={"upsampler": _MOSR_UPSAMPLERS}),
    Spec("MoESR", "MoESR", "scale"),
    Spec("FDAT", "FDAT", "scale", multiple=_lcm_of("window_size")),
    Spec("RealCUGAN", "UpCunet2x", fixed_scale=2, minimum=32),
    Spec("RealCUGAN", "UpCunet2x_fast", fixed_scale=2, multiple=lambda kw: 4, minimum=40),
    Spec("RealCUGAN", "UpCunet3x", fixed_scale=3, minimum=32),
    Spec("RealCUGAN", "UpCunet4x", fixed_scale=4, minimum=32),
    Spec("SwiftSRGAN", "Generator", "upscale_factor", name="SwiftSRGAN"),
    # Restoration at scale 1 (denoising, deblurring, low light)
    Spec("NAFNet", "NAFNet", fixed_scale=1),
    Spec("DnCNN", "DnCNN", fixed_scale=1),
    Spec("KBNet", "KBNet_s", fixed_scale=1, multiple=lambda kw: 16),
    Spec("FFTformer", "FFTformer", fixed_scale=1, multiple=lambda kw: 32),
    Spec("RetinexFormer", "RetinexFormer", fixed_scale=1, multiple=lambda kw: 8),
)

# What spandrel 0.4.2 has and this trainer does not register, and why (listed in docs/networks.md).
LEFT_OUT: Dict[str, str] = {
    "ESRGAN (RRDBNet), Compact (SRVGGNetCompact)": "the native RRDBNet and SRVGGNetCompact have the same "
                                                   "names and weights, and spandrel detects their .pth files",
    "GFPGAN, RestoreFormer": "face restoration: fixed 512x512 aligned faces, trained with identity and "
                             "facial-component losses this trainer does not have",
    "LaMa": "inpainting: takes an image and a mask",
    "DRUNet": "its input carries a noise-level map as an extra channel, not an image alone",
    "FBCNN": "returns the image and a predicted JPEG quality factor (two outputs)",
    "MMRealSR": "returns the image and degradation estimates, and is steered by degradation degrees",
    "IPT": "a multi-task transformer with one head per task and scale, selected at run time",
    "AuraSR": "a GAN upsampler built around a style network, 600M parameters, not trainable from scratch here",
    "GRL": "spandrel cannot read its window and stripe sizes back from the weights (it guesses the published "
           "models' ones), so what this trainer writes would not reopen in spandrel as the same network",
    "SCUNet": "denoising with 32-channel attention heads and a minimum input of 40 pixels; not registered yet",
    "KBNet_l, Uformer, HVICIDNet (CIDNet), MixDehazeNet, SAFMNBCIE": "dehazing, low-light and enhancement networks "
                                                                     "with fixed-size or square-input "
                                                                     "constraints; not registered yet",
}


class SpandrelNetwork(nn.Module):
    """Marker base of the registered spandrel classes; the attributes below are set per class."""

    spandrel_class: type
    scale_argument: Optional[str]
    fixed_scale: Optional[int]
    input_minimum: int
    input_multiple: int
    batch_minimum: int
    multiple_rule: Callable[[Kwargs], int]


def yaml_signature(base: type, channel_defaults: Sequence[str] = ()) -> Tuple[inspect.Signature, Dict[str, Any]]:
    """The YAML-writable keyword arguments of ``base`` and their types (a hint, else the default's type)."""
    try:
        hints = typing.get_type_hints(base.__init__)  # type: ignore[misc]
    except Exception:  # a hint spandrel's module cannot resolve: fall back to the defaults' types
        hints = {}
    params, types = [], {}
    for p in inspect.signature(base).parameters.values():
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        default = p.default
        if default is not p.empty and (inspect.isclass(default) or callable(default)):
            continue  # a layer class or function: not an option
        if default is p.empty and p.name in channel_defaults:
            default = 3
        ann = hints.get(p.name) or _type_of(default)
        types[p.name] = ann
        params.append(inspect.Parameter(p.name, p.KEYWORD_ONLY, default=default, annotation=ann))
    return inspect.Signature(params), types


def _type_of(default: Any) -> Any:
    """``48`` -> int, ``0.1`` -> float, ``[2, 4]`` -> Sequence[int]; None and unknown: anything."""
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple)) and default:
        item = _type_of(default[0])
        if all(_type_of(d) == item for d in default):
            return typing.cast(Any, Sequence)[item]
    return Any


def _make_class(spec: Spec) -> type:
    """The registered subclass of spandrel's class (imports spandrel: made on first use)."""
    module = vars(importlib.import_module(f"spandrel.architectures.{spec.module}"))
    base = next(v for v in module.values() if isinstance(v, type) and v.__name__ == spec.cls)
    signature, types = yaml_signature(base, spec.channel_defaults)
    defaults = {n: p.default for n, p in signature.parameters.items() if p.default is not p.empty}

    def __init__(self: nn.Module, **kwargs: Any) -> None:
        full = {**defaults, **kwargs}
        for name, aliases in spec.value_aliases.items():
            full[name] = aliases.get(full[name], full[name]) if isinstance(full[name], str) else full[name]
        # lists as spandrel's code expects them (YAML options arrive as tuples)
        base.__init__(self, **{k: list(v) if isinstance(v, tuple) else v for k, v in full.items()})  # type: ignore[misc]
        setattr(self, "input_multiple", spec.multiple(full))  # noqa: B010 - a plain int on an nn.Module

    __init__.__annotations__ = {**types, "return": None}
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *signature.parameters.values()])

    def forward(self: nn.Module, x: Any) -> Any:
        return base.forward(self, x.clone())  # type: ignore[attr-defined]

    name = spec.name or spec.cls
    cls = type(name, (base, SpandrelNetwork), {
        **({"forward": forward} if spec.mutates_input else {}), "__init__": __init__, "__signature__": signature,
        "__module__": __name__, "__qualname__": name,
        "__doc__": f"spandrel's {spec.cls} ({spec.module}); arguments as in spandrel.",
        "spandrel_class": base, "scale_argument": spec.scale_argument, "fixed_scale": spec.fixed_scale,
        "input_minimum": spec.minimum, "multiple_rule": staticmethod(spec.multiple),
        "batch_minimum": spec.batch_minimum,
    })
    return cls


def _register_all() -> List[str]:
    names = []
    for spec in SPECS:
        name = spec.name or spec.cls
        if name not in ARCH_REGISTRY:  # a native network of that name wins
            ARCH_REGISTRY.register_lazy(name, functools.partial(_make_class, spec))
            names.append(name)
    return names


# The registered names of spandrel's networks.
SPANDREL_NETWORKS: List[str] = _register_all()


def _real_cugan_problem(scale: Any, pro: Any, fast: Any) -> Optional[Tuple[str, str]]:
    """(key, message) of what Real-CUGAN does not exist as: it has x2, x3 and x4; its fast variant x2 only,
    and no pro version of that."""
    if scale not in (2, 3, 4):
        return "type", f"Real-CUGAN upscales x2, x3 or x4, but scale is {scale}; set scale: 2, 3 or 4"
    if fast and scale != 2:
        return "fast", f"Real-CUGAN's fast variant upscales x2 only, but scale is {scale}; set fast: false or scale: 2"
    if fast and pro:
        return "pro", "Real-CUGAN's fast variant has no pro version; set pro: false or fast: false"
    return None


def _real_cugan_spec(arguments: Kwargs) -> Optional[Spec]:
    """The registered UpCunet class ``RealCUGAN(**arguments)`` builds (None: none exists for them)."""
    name = "UpCunet2x_fast" if arguments.get("fast") else f"UpCunet{arguments.get('scale')}x"
    return next((spec for spec in SPECS if spec.cls == name), None)


def _real_cugan_rule(options: Any, component: Any, path: Path_, problems: List[Problem]) -> None:
    from ..option_rules import keys_valid

    if not keys_valid(problems, path + ("pro",), path + ("fast",)):
        return  # a mistyped switch has its own problem
    arguments = {"pro": False, "fast": False, **component.kwargs}
    problem = _real_cugan_problem(options.scale, arguments["pro"], arguments["fast"])
    if problem is not None:
        problems.append(Problem(path + (problem[0],), problem[1]))


def RealCUGAN(*, scale: int = 4, pro: bool = False, fast: bool = False, in_channels: int = 3,  # noqa: N802
              out_channels: int = 3) -> nn.Module:
    """Real-CUGAN at the scale of the options, as traiNNer-redux's ``realcugan``: spandrel's UpCunet2x,
    UpCunet3x or UpCunet4x (``pro``: the pro weights' layout), UpCunet2x_fast with ``fast`` at x2. What it
    returns is the registered class of that name, so its ``.pth`` reopens in spandrel as that network."""
    problem = _real_cugan_problem(scale, pro, fast)
    spec = _real_cugan_spec({"scale": scale, "fast": fast})
    if problem is not None or spec is None:
        raise ValueError(problem[1] if problem else f"Real-CUGAN has no x{scale} network")
    extra = {} if fast else {"pro": pro}
    return ARCH_REGISTRY.get(spec.cls)(in_channels=in_channels, out_channels=out_channels, **extra)


def _real_cugan_multiple(arguments: Kwargs) -> int:
    spec = _real_cugan_spec(arguments)
    return spec.multiple(arguments) if spec is not None else 1


def _real_cugan_minimum(arguments: Kwargs) -> int:
    spec = _real_cugan_spec(arguments)
    return spec.minimum if spec is not None else 1


# What network_spec reads off a registered class, for the network RealCUGAN builds.
RealCUGAN.scale_argument = "scale"  # type: ignore[attr-defined]
RealCUGAN.multiple_rule = _real_cugan_multiple  # type: ignore[attr-defined]
RealCUGAN.minimum_rule = _real_cugan_minimum  # type: ignore[attr-defined]
RealCUGAN.option_spec = ComponentSpec(rule=_real_cugan_rule)  # type: ignore[attr-defined]
ARCH_REGISTRY.register(RealCUGAN)
