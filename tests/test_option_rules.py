"""Components bring their option rules: a model with its own section and a loss with its own rule are checked by
load_options with file and line, registered here without any change to framework/options.py."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Iterator, List

import pytest
import torch
import yaml
from torch import nn

from framework.errors import UserError
from framework.models.sr_model import SRModel
from framework.option_rules import LossSpec, OptionSection, declared_sections, keys_valid
from framework.options import Options, TrainingOptions, load_options
from framework.registry import LOSS_REGISTRY, MODEL_REGISTRY
from framework.schema import Component, Path_, Problem, opt

from .tinyrun import write_options


@dataclass(frozen=True, kw_only=True)
class ToyOptions:
    """The toy model's own section."""

    strength: int = opt(1, doc="How strong the toy is.", min=0)


class ToyModel(SRModel):
    """SRModel with a ``toy`` section whose strength may not exceed the scale."""

    requirements = dataclasses.replace(SRModel.requirements, sections=MappingProxyType(
        {"toy": OptionSection(ToyOptions, doc="The toy model's settings.")}))

    @classmethod
    def check_options(cls, options: TrainingOptions, problems: List[Problem]) -> None:
        super().check_options(options, problems)
        strength = options.section("toy", ToyOptions).strength
        if keys_valid(problems, ("toy",)) and strength > options.scale:
            problems.append(Problem(("toy", "strength"), f"{strength} is more than scale {options.scale}"))


def smooth_or_sharp(options: Options, component: Component, path: Path_, problems: List[Problem]) -> None:
    """ToyLoss's rule: one of ``smooth`` and ``sharp``."""
    if component.kwargs.get("smooth") and component.kwargs.get("sharp"):
        problems.append(Problem(path + ("sharp",), "ToyLoss is smooth or sharp, not both; remove one"))


class ToyLoss(nn.Module):
    option_spec = LossSpec(rule=smooth_or_sharp)

    def __init__(self, smooth: bool = False, sharp: bool = False, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, output: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * (output - gt).abs().mean()


@pytest.fixture()
def toys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ToyModel and ToyLoss registered for one test (the registries as they were afterwards)."""
    for registry in (MODEL_REGISTRY, LOSS_REGISTRY):
        monkeypatch.setattr(registry, "_items", dict(registry._items))
    MODEL_REGISTRY.register(ToyModel)
    LOSS_REGISTRY.register(ToyLoss)
    yield


def _line(path: Path, pattern: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(pattern, line))


def test_a_toy_model_section_and_a_toy_loss_rule_are_reported_with_file_and_line(toys: None,
                                                                                   tmp_path: Path) -> None:
    path = write_options(tmp_path, "toy", **{"model_type": "ToyModel", "scale": 2, "toy": {"strength": 3},
                                             "train.losses": [{"type": "ToyLoss", "smooth": True, "sharp": True}]})
    with pytest.raises(UserError) as info:
        load_options(str(path))
    lines = str(info.value).splitlines()
    assert f"{path}:{_line(path, 'strength: 3')}: toy.strength: 3 is more than scale 2" in lines, lines
    assert (f"{path}:{_line(path, 'sharp: true')}: train.losses[0].sharp: ToyLoss is smooth or sharp, not both; "
            "remove one") in lines, lines
    assert len(lines) == 2, lines


def test_the_toy_section_is_typed_and_its_keys_checked_like_the_others(toys: None, tmp_path: Path) -> None:
    path = write_options(tmp_path, "toy", **{"model_type": "ToyModel", "scale": 2, "toy": {"strenght": 2}})
    with pytest.raises(UserError) as info:
        load_options(str(path))
    assert f"{path}:{_line(path, 'strenght')}: toy.strenght: unknown key 'strenght' in toy; did you mean " \
           "'strength'?" in str(info.value)
    good = write_options(tmp_path, "good", **{"model_type": "ToyModel", "scale": 2, "toy": {"strength": 2},
                                              "train.losses": [{"type": "ToyLoss", "sharp": True}]})
    options = load_options(str(good))
    assert options.section("toy", ToyOptions) == ToyOptions(strength=2)
    assert yaml.safe_load(yaml.safe_dump(options.to_dict()))["toy"] == {"strength": 2}
    assert "toy" in declared_sections()


def test_another_model_given_the_toy_section_names_its_owner(toys: None, tmp_path: Path) -> None:
    path = write_options(tmp_path, "toy", **{"model_type": "SRModel", "toy": {"strength": 1}})
    with pytest.raises(UserError) as info:
        load_options(str(path))
    assert f"{path}:{_line(path, '^toy:')}: toy: SRModel does not use it; remove it, or set model_type: ToyModel" \
        in str(info.value)


def test_without_the_toys_the_section_is_an_unknown_key(tmp_path: Path) -> None:
    path = write_options(tmp_path, "toy", **{"toy": {"strength": 1}})
    with pytest.raises(UserError) as info:
        load_options(str(path))
    assert "toy: unknown key 'toy'" in str(info.value)
