"""The generator's losses, from BasicSR's keys (``pixel_opt``, ``perceptual_opt``, ``gan_opt``) and from
traiNNer-redux's ``losses:`` list, built and run one way.

Each loss is a :class:`LossEntry` (its log name, its option key, its component). Entries whose
``loss_weight`` is 0 are dropped before anything is built, so a disabled loss costs nothing (traiNNer-redux's
templates list their optional losses at weight 0). A loss class says how it is called by the role of its
``option_spec`` (:class:`~framework.option_rules.LossSpec`): ``pixel`` (output, GT; the default), ``perceptual``
(two terms, ``percep`` and ``style``), ``adversarial`` (the GAN loss: the model runs it on its discriminator)
or ``artifact`` (output, EMA output, GT: LDL).
A loss with ``float32 = True`` runs in float32 outside autocast (mixed precision).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .option_rules import LossSpec, spec_of
from .registry import LOSS_REGISTRY
from .schema import Component

# BasicSR's loss keys and their log names (BasicSR's l_pix, l_percep / l_style, l_gan).
BASICSR_KEYS = (("pixel_opt", "pix"), ("perceptual_opt", "percep"), ("gan_opt", "gan"))
# Which ground truth each role compares with (BaseModel.target: Real-ESRGAN sharpens some of them).
ROLE_TARGET = {"pixel": "pix", "artifact": "pix", "perceptual": "percep", "adversarial": "gan"}

# traiNNer-redux losses this trainer does not provide, and why; at loss_weight 0 an entry naming one is
# skipped like any disabled loss, otherwise it is an option error.
NOT_PROVIDED = {
    "adistsloss": "A-DISTS needs learned weights that are not shipped here",
    "contextualloss": "the contextual loss is not implemented here",
    "nccloss": "the normalised cross-correlation loss is not implemented here",
    "lumaloss": "use hsluvloss (its lightness term) or a pixel loss",
    "colorloss": "use hsluvloss",
    "averageloss": "not implemented here",
    "bicubicloss": "not implemented here",
    "psnrloss": "not implemented here",
    "gradientvarianceloss": "not implemented here",
    "multiscaleganloss": "not implemented here; use ganloss",
    "perceptualfp16loss": "use perceptualloss (with train.mixed_precision for half precision)",
}


def short_name(type_name: str) -> str:
    """A loss's log name from its type: ``HSLuvLoss`` -> ``hsluv``, ``charbonnierloss`` -> ``charbonnier``."""
    name = type_name.lower()
    return name[:-4] if name.endswith("loss") and len(name) > 4 else name


@dataclass(frozen=True)
class LossEntry:
    """One generator loss: ``name`` (logged as ``l_<name>`` / ``l_g_<name>``), ``key`` (its option path under
    ``train``) and its component."""

    name: str
    key: Tuple[Union[str, int], ...]
    component: Component

    @property
    def role(self) -> str:
        return role_of(self.component.type)

    @property
    def weight(self) -> float:
        return loss_weight(self.component)

    def suffixed(self, term: str) -> str:
        """A second term of this entry (``style`` beside ``percep``), numbered as the entry is."""
        return term + self.name[len(self.name.rstrip("0123456789_")):]


def loss_weight(component: Component) -> float:
    """``loss_weight`` as given, else the class's default (1 for every loss here). A :data:`NOT_PROVIDED`
    entry is in the options only at weight 0."""
    if "loss_weight" in component.kwargs:
        return float(component.kwargs["loss_weight"])
    parameter = inspect.signature(LOSS_REGISTRY.get(component.type)).parameters.get("loss_weight")
    default = parameter.default if parameter is not None else 1.0
    return float(default) if isinstance(default, (int, float)) else 1.0


def role_of(type_name: str) -> str:
    """A loss class's role (``pixel`` without a LossSpec, and for a weight-0 entry of a loss not provided)."""
    if type_name not in LOSS_REGISTRY:
        return "pixel"
    return spec_of(LOSS_REGISTRY.get(type_name), LossSpec).role


def all_entries(pixel_opt: Optional[Component], perceptual_opt: Optional[Component], gan_opt: Optional[Component],
                losses: Tuple[Component, ...]) -> List[LossEntry]:
    """Every loss the options name, weight 0 or not, BasicSR's keys first; a name used twice gets ``_2``, ..."""
    entries: List[LossEntry] = []
    taken: Dict[str, int] = {}

    def add(name: str, key: Tuple[Union[str, int], ...], component: Component) -> None:
        taken[name] = taken.get(name, 0) + 1
        entries.append(LossEntry(name if taken[name] == 1 else f"{name}_{taken[name]}", key, component))

    for (key, name), component in zip(BASICSR_KEYS, (pixel_opt, perceptual_opt, gan_opt), strict=True):
        if component is not None:
            add(name, (key,), component)
    for index, component in enumerate(losses):
        add({"perceptual": "percep", "adversarial": "gan"}.get(role_of(component.type), short_name(component.type)),
            ("losses", index), component)
    return entries


class GeneratorLosses:
    """The active (nonzero-weight) losses, built; ``terms`` runs the generator's ones, ``gan`` is the
    adversarial loss the model runs on its discriminator (None without one)."""

    def __init__(self, entries: List[LossEntry], build: Callable[[LossEntry], nn.Module]) -> None:
        active = [entry for entry in entries if entry.weight != 0]
        self.entries = [(entry, build(entry)) for entry in active if entry.role != "adversarial"]
        adversarial = [entry for entry in active if entry.role == "adversarial"]
        self.gan: Optional[nn.Module] = build(adversarial[0]) if adversarial else None
        self.needs_ema_output = any(entry.role == "artifact" for entry, _ in self.entries)

    def terms(self, output: torch.Tensor, target: Callable[[str], torch.Tensor],
              ema_output: Callable[[], torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Each generator loss by name (the perceptual loss's zero-weight style term left out)."""
        out: Dict[str, torch.Tensor] = {}
        for entry, loss in self.entries:
            gt = target(ROLE_TARGET[entry.role])
            if getattr(loss, "float32", False):  # clamps at 1e-12, powers, FFTs: not in half precision
                with torch.autocast(output.device.type, enabled=False):
                    out[entry.name] = (loss(output.float(), ema_output().float(), gt.float())
                                       if entry.role == "artifact" else loss(output.float(), gt.float()))
            elif entry.role == "perceptual":
                percep, style = loss(output, gt)
                out.update({name: term for name, term in ((entry.name, percep), (entry.suffixed("style"), style))
                            if term is not None})
            elif entry.role == "artifact":
                out[entry.name] = loss(output, ema_output(), gt)
            else:
                out[entry.name] = loss(output, gt)
        return out
