"""Reading published model files with spandrel: any file it reads (`.pth`, `.pt`, `.ckpt`, `.safetensors`, the
key layouts the community used), what network it holds (architecture, arguments, scale, size), and its weights
in this trainer's layout. Used for ``path.pretrain_path`` (``network_g: {type: auto}`` and the weights of a file
our own reader does not understand) and by ``scripts/checkpoint.py inspect``."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch

from .errors import UserError, first_line
from .registry import ARCH_REGISTRY
from .schema import Problem, signature_params


@dataclass
class Detected:
    """What spandrel found in a file."""

    architecture: str  # spandrel's architecture name
    type: Optional[str]  # the registered class that builds it here (None: none does)
    arguments: Dict[str, Any]  # its constructor arguments, as YAML would give them
    scale: int
    parameters: int
    file_bytes: int
    state: Dict[str, torch.Tensor]

    def describe(self) -> str:
        return (f"{self.architecture} x{self.scale} ({self.parameters / 1e6:.2f}M parameters, "
                f"{self.file_bytes / 1e6:.1f} MB)")


def _registered_type(model: torch.nn.Module) -> Optional[str]:
    for name in ARCH_REGISTRY:
        if getattr(ARCH_REGISTRY.get(name), "spandrel_class", None) is type(model):
            return name
    return None


def _yaml_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_yaml_value(v) for v in value]
    return value


def detect(path: str, option: str = "path.pretrain_path") -> Detected:
    """spandrel's reading of ``path``; a file it does not recognise is a :class:`UserError`."""
    import spandrel

    try:
        descriptor = spandrel.ModelLoader().load_from_file(path)
    except spandrel.UnsupportedModelError as exc:
        raise UserError(f"{option}: {path}: spandrel does not recognise the network in this file") from exc
    except Exception as exc:  # unreadable, truncated, not a model file
        raise UserError(f"{option}: {path}: cannot be read as a model file "
                        f"({first_line(exc)})") from exc
    model = descriptor.model
    type_ = _registered_type(model)
    arguments: Dict[str, Any] = {}
    if type_ is not None:
        accepted = signature_params(ARCH_REGISTRY.get(type_))[0]
        arguments = {k: _yaml_value(v) for k, v in getattr(model, "hyperparameters", {}).items() if k in accepted}
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Detected(str(descriptor.architecture.name), type_, arguments, int(descriptor.scale),
                    sum(p.numel() for p in model.parameters()), os.path.getsize(path), state)


def auto_network(raw: Mapping[str, Any], options: Mapping[str, Any], problems: List[Problem]) -> Any:
    """``network_g: {type: auto, ...}``: the network and arguments of ``path.pretrain_path`` (the other keys
    given override them); the resolved block is what the run logs and saves, so resuming needs no detection."""
    path_section = options.get("path") if isinstance(options.get("path"), dict) else {}
    source = path_section.get("pretrain_path") if isinstance(path_section, dict) else None
    if not isinstance(source, str) or not os.path.isfile(source):
        problems.append(Problem(("network_g", "type"), "auto takes the network from the file path.pretrain_path "
                                                       "names; set path.pretrain_path to an existing model file"))
        return None
    try:
        found = detect(source)
    except UserError as exc:
        problems.append(Problem(("path", "pretrain_path"), str(exc).split(": ", 1)[-1]))
        return None
    if found.type is None:
        problems.append(Problem(("network_g", "type"), f"auto: {source} is {found.describe()}, a network this "
                                                       "trainer does not register; name the type yourself"))
        return None
    scale = options.get("scale")
    if isinstance(scale, int) and scale != found.scale:
        problems.append(Problem(("scale",), f"{source} is {found.describe()}, but scale is {scale}; set scale: "
                                            f"{found.scale}"))
        return None
    return {**found.arguments, **{k: v for k, v in raw.items() if k != "type"}, "type": found.type}


def pretrained_weights(source: str, read: Callable[[], Dict[str, torch.Tensor]],
                       fits: Callable[[Mapping[str, torch.Tensor]], bool]) -> Dict[str, torch.Tensor]:
    """The weights of ``source`` for a network: our reader's (``read``) when they fit, else spandrel's reading
    of the file (any format and key layout) when that fits; otherwise our reader's, whose misfit the caller
    reports (or its error)."""
    error: Optional[UserError] = None
    ours: Optional[Dict[str, torch.Tensor]] = None
    try:
        ours = read()
    except UserError as exc:
        error = exc
    if ours is not None and fits(ours):
        return ours
    try:
        found = detect(source)
    except UserError:
        found = None
    if found is not None and fits(found.state):
        return found.state
    if ours is not None:
        return ours
    if found is not None:
        return found.state
    assert error is not None
    raise error


def what_file_is(source: str) -> str:
    """``SPAN x4 (...)`` for a misfit message; empty when spandrel cannot tell."""
    try:
        return detect(source).describe()
    except UserError:
        return ""
