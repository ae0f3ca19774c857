"""The README stays true: the option reference is the schema's, the quick start holds two commands."""
import re
from pathlib import Path
from typing import Callable

import pytest

from framework.docs import generated_sections

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("start, end, make", generated_sections(),
                         ids=[make.__name__ for _, _, make in generated_sections()])
def test_generated_part_is_current(start: str, end: str, make: Callable[[], str]) -> None:
    """The option reference (the schema), the BasicSR and traiNNer-redux tables (the one names table) and the
    preset table (framework/archs/presets.py)."""
    text = README.read_text(encoding="utf-8")
    current = text[text.index(start):text.index(end) + len(end)]
    assert current == make(), "run: python scripts/options_doc.py --write"


def test_every_schema_key_is_documented() -> None:
    import dataclasses
    from framework import options as o

    text = README.read_text(encoding="utf-8")
    for cls, prefix in ((o.Options, ""), (o.PathOptions, "path."), (o.TrainOptions, "train."),
                        (o.ValOptions, "val."), (o.LoggerOptions, "logger."), (o.WandbOptions, "logger.wandb."),
                        (o.DatasetOptions, "")):
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal") or f.name == "dataset":
                continue
            assert f"`{prefix}{f.name}`" in text, f"{prefix}{f.name} is not documented"


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 2
    assert "train.py -opt options/train/example.yml" in lines[0]
    assert "pytest" in lines[1]
