"""What a component declares about its options, typed, on the contract it implements.

The option checks of :mod:`framework.options` are generic: they read these declarations and run each
component's own rules, so a new model, loss, metric, dataset or schedule brings its rules with it.

- A registered class or function declares an ``option_spec`` (:class:`ComponentSpec`, or the kind's subclass:
  :class:`LossSpec`, :class:`MetricSpec`, :class:`DatasetSpec`): arguments it refuses and why, and a rule of
  its own over its arguments and the rest of the options (:data:`ComponentRule`).
- A model declares ``requirements`` (:class:`ModelRequirements`): the keys it needs and the ones it would
  ignore, the top-level sections it owns (:class:`OptionSection`, e.g. Real-ESRGAN's ``degradation``), and
  implements ``check_options`` for the rest (:class:`OptionsOwner`).

Every rule reports :class:`~framework.schema.Problem` s (key path, message); they are printed with file and
line beside the key errors, in the same one pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Dict, List, Literal, Mapping, Protocol, Sequence, Tuple

from .registry import MODEL_REGISTRY
from .schema import ComponentRule, ComponentSpec, Path_, Problem, spec_of

__all__ = ["ComponentRule", "ComponentSpec", "DatasetSpec", "LossSpec", "MetricSpec", "ModelRequirements",
           "OptionSection", "OptionsOwner", "declared_sections", "keys_valid", "model_classes", "requirements_of",
           "spec_of"]

LossRole = Literal["pixel", "perceptual", "adversarial", "artifact"]


@dataclass(frozen=True)
class LossSpec(ComponentSpec):
    """How a loss is called: ``pixel`` (output, GT), ``perceptual`` (two terms, ``percep`` and ``style``),
    ``adversarial`` (the GAN loss, run on the model's discriminator) or ``artifact`` (output, EMA output, GT)."""

    role: LossRole = "pixel"


@dataclass(frozen=True)
class MetricSpec(ComponentSpec):
    """Whether higher values of a metric are better (BasicSR's ``better``, which an options file may override)."""

    better: Literal["higher", "lower"] = "higher"


@dataclass(frozen=True)
class DatasetSpec(ComponentSpec):
    """``gt_only``: the dataset gives GT images only, for a model that synthesises its LR inputs."""

    gt_only: bool = False


@dataclass(frozen=True)
class OptionSection:
    """A top-level section of the options file that belongs to the models declaring it (Real-ESRGAN's
    ``degradation``): its schema (a frozen dataclass of :func:`~framework.schema.opt` fields) and its text in
    the options reference."""

    schema: type
    doc: str  # its row in the top-level table
    notes: str = ""  # the paragraph under its heading in the reference
    unused_because: str = ""  # said when a model that does not declare it is given it, e.g. " (it ... )"


@dataclass(frozen=True)
class ModelRequirements:
    """What a model needs from the options to train, and what it would ignore."""

    # Dotted keys it needs to train; an entry of several keys needs one of them.
    required: Tuple[Tuple[str, ...], ...] = ()
    # Dotted keys it would ignore, and what to do instead (said after "remove it, or").
    unused: Tuple[str, ...] = ()
    unused_fix: str = ""
    # Top-level sections it owns, by key.
    sections: Mapping[str, OptionSection] = field(default_factory=lambda: MappingProxyType({}))
    # It trains against one GAN loss (train.gan_opt or a ganloss entry of train.losses).
    adversarial: bool = False
    # It makes its LR inputs from the GT images (a dataset with DatasetSpec.gt_only).
    synthesizes_inputs: bool = False


class OptionsOwner(Protocol):
    """The option side of a model class (:class:`~framework.models.base.Model`)."""

    requirements: ClassVar[ModelRequirements]

    @classmethod
    def check_options(cls, options: Any, problems: List[Problem]) -> None:
        """Its rules beyond :attr:`requirements`, run with the key checks of a training run's options
        (:class:`~framework.options.TrainingOptions`) when ``model_type`` names it."""


def keys_valid(problems: Sequence[Problem], *paths: Path_) -> bool:
    """Whether no problem so far is at or under any of ``paths`` (a rule reads only what validated)."""
    return not any(p.path[:len(path)] == path for p in problems for path in paths)


def model_classes() -> List[Tuple[str, Any]]:
    """The registered models in registration order, each once (an alias is left out)."""
    seen: List[Any] = []
    out = []
    for name in MODEL_REGISTRY.in_order():
        cls = MODEL_REGISTRY.get(name)
        if cls not in seen:
            seen.append(cls)
            out.append((name, cls))
    return out


def requirements_of(model: Any) -> ModelRequirements:
    value = getattr(model, "requirements", None)
    return value if isinstance(value, ModelRequirements) else ModelRequirements()


def declared_sections() -> Dict[str, Tuple[OptionSection, List[str]]]:
    """Every top-level section some registered model owns, with the models owning it (registration order)."""
    out: Dict[str, Tuple[OptionSection, List[str]]] = {}
    for name, cls in model_classes():
        for key, section in requirements_of(cls).sections.items():
            out.setdefault(key, (section, []))[1].append(name)
    return out

