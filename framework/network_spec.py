"""What the options say about the network beyond its own arguments: its scale against the top-level ``scale``,
and the input sizes it takes against the training patch size.

A network declares its scale argument (``scale_argument``, or ``fixed_scale`` for one with a single scale;
the native ones name it ``upscale`` or ``scale``) and, where its windows must tile the input exactly, its
input multiple (``multiple_rule`` of its arguments, ``input_multiple`` on the built network) and smallest
input (``input_minimum``, or ``minimum_rule`` of its arguments). These are checked with the option keys,
before anything is built or written.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Dict, List, Optional

from .registry import ARCH_REGISTRY
from .schema import Component, Problem, plain, signature_params

# The native networks' scale arguments (BasicSR's names).
NATIVE_SCALE_ARGUMENTS = ("upscale", "scale")


def scale_argument(cls: Any) -> Optional[str]:
    """The constructor argument that is the network's scale (None: it has one fixed scale, or none known)."""
    if hasattr(cls, "scale_argument") or hasattr(cls, "fixed_scale"):
        return getattr(cls, "scale_argument", None)
    params = signature_params(cls)[0]
    return next((a for a in NATIVE_SCALE_ARGUMENTS if a in params), None)


def full_arguments(component: Component) -> Dict[str, Any]:
    """Every constructor argument of the component's class: the given ones, then the defaults."""
    params = signature_params(ARCH_REGISTRY.get(component.type))[0]
    defaults = {n: p.default for n, p in params.items() if p.default is not p.empty}
    return {**defaults, **dict(component.kwargs)}


def describe_network(component: Component) -> str:
    """``preset span = SPAN(num_in_ch=3, ..., upscale=4)``: the class and every argument it is built with (for the
    log and --dry-run)."""
    text = f"{component.type}({', '.join(f'{k}={plain(v)!r}' for k, v in full_arguments(component).items())})"
    return f"preset {component.preset} = {text}" if component.preset else text


def input_multiple(component: Component) -> int:
    """The multiple of the input height and width the network's windows tile exactly (1: any size)."""
    rule = getattr(ARCH_REGISTRY.get(component.type), "multiple_rule", None)
    return int(rule(full_arguments(component))) if rule is not None else 1


def input_minimum(component: Component) -> int:
    """The smallest input height and width the network takes (``minimum_rule`` of its arguments where it
    depends on them, else ``input_minimum``)."""
    cls = ARCH_REGISTRY.get(component.type)
    rule = getattr(cls, "minimum_rule", None)
    return int(rule(full_arguments(component))) if rule is not None else int(getattr(cls, "input_minimum", 1))


def resolve_scale(component: Component, scale: int, key: str, problems: List[Problem]) -> Component:
    """The component with its scale argument following ``scale`` when not given (spandrel networks and
    presets); a given one that differs is a problem at its key."""
    cls = ARCH_REGISTRY.get(component.type)
    arg = scale_argument(cls)
    fixed = getattr(cls, "fixed_scale", None)
    if arg is None:
        if fixed is not None and fixed != scale:
            problems.append(Problem((key, "type"), f"{component.type} upscales x{fixed} only, but scale is {scale}; "
                                                   f"set scale: {fixed} or choose another network"))
        return component
    follows = component.preset is not None or hasattr(cls, "scale_argument")
    if arg not in component.kwargs and follows:
        return dataclasses.replace(component, kwargs=MappingProxyType({**component.kwargs, arg: scale}))
    value = full_arguments(component).get(arg)
    if value != scale and not isinstance(value, bool) and isinstance(value, int):
        problems.append(Problem((key, arg), f"{component.type} upscales x{value} ({arg}: {value}), but scale is "
                                            f"{scale}; set {arg}: {scale}"
                                            + (" or remove it (it follows scale)" if follows else "")))
    return component


def check_patch_size(component: Component, scale: int, gt_size: Any, where: tuple,
                     problems: List[Problem]) -> None:
    """A training patch (``gt_size``, LR side gt_size / scale) the network's windows cannot tile."""
    if not isinstance(gt_size, int) or isinstance(gt_size, bool) or gt_size % scale:
        return
    lq = gt_size // scale
    multiple, minimum = input_multiple(component), input_minimum(component)
    if lq % multiple:
        fits = [g for g in range(multiple * scale, 4 * gt_size, multiple * scale)]
        near = min(fits, key=lambda g: abs(g - gt_size)) if fits else multiple * scale
        problems.append(Problem(where, f"{gt_size} / scale {scale} = {lq} LR pixels, not a multiple of "
                                       f"{multiple} ({component.type}'s window); use a gt_size that is a multiple "
                                       f"of {multiple * scale}, e.g. {near}"))
    elif lq < minimum:
        problems.append(Problem(where, f"{gt_size} / scale {scale} = {lq} LR pixels, smaller than the "
                                       f"{minimum} {component.type} needs; use gt_size >= {minimum * scale}"))



def check_batch_size(component: Component, batch: Any, where: tuple, problems: List[Problem]) -> None:
    """A training batch smaller than the network's ``batch_minimum`` (batch norm over pooled features, as in
    DAT's channel attention, has one value per channel from a batch of 1 and fails)."""
    minimum = int(getattr(ARCH_REGISTRY.get(component.type), "batch_minimum", 1))
    if isinstance(batch, int) and not isinstance(batch, bool) and batch < minimum:
        problems.append(Problem(where, f"{component.type} trains on batches of at least {minimum} (a batch norm "
                                       f"in it needs more than one sample); set batch_size_per_gpu: {minimum} or "
                                       f"more"))


# The input-channel argument of the registered networks (native, then spandrel's spellings).
CHANNEL_ARGUMENTS = ("num_in_ch", "in_chans", "in_ch", "in_channels", "inp_channels", "in_nc", "n_colors",
                     "img_channel")


def input_channels(component: Component) -> int:
    """How many channels the network takes (3 when it does not say)."""
    arguments = full_arguments(component)
    value = next((arguments[a] for a in CHANNEL_ARGUMENTS if a in arguments), 3)
    return value if isinstance(value, int) and not isinstance(value, bool) else 3
