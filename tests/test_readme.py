"""The README stays true: the option reference is the schema's, the quick start holds two commands."""
import re
from pathlib import Path

from framework.docs import (BASICSR_END, BASICSR_START, END, PRESETS_END, PRESETS_START, REDUX_END, REDUX_START,
                            START, basicsr_reference, options_reference, presets_reference, redux_reference)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_option_reference_is_generated_from_the_schema() -> None:
    text = README.read_text(encoding="utf-8")
    current = text[text.index(START):text.index(END) + len(END)]
    assert current == options_reference(), "run: python scripts/options_doc.py --write"


def test_basicsr_table_is_generated_from_the_one_table() -> None:
    text = README.read_text(encoding="utf-8")
    current = text[text.index(BASICSR_START):text.index(BASICSR_END) + len(BASICSR_END)]
    assert current == basicsr_reference(), "run: python scripts/options_doc.py --write"


def test_redux_table_is_generated_from_the_one_table() -> None:
    text = README.read_text(encoding="utf-8")
    current = text[text.index(REDUX_START):text.index(REDUX_END) + len(REDUX_END)]
    assert current == redux_reference(), "run: python scripts/options_doc.py --write"


def test_preset_table_is_generated_from_the_presets() -> None:
    text = README.read_text(encoding="utf-8")
    current = text[text.index(PRESETS_START):text.index(PRESETS_END) + len(PRESETS_END)]
    assert current == presets_reference(), "run: python scripts/options_doc.py --write"


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
