"""The documentation stays true: the generated parts are current, every option key is documented, every
relative link resolves, and the README's quick start holds the two commands .ci/run runs."""
import dataclasses
import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from framework.docs import GeneratedSection, generated_sections

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))


@pytest.mark.parametrize("section", generated_sections(), ids=[s.make.__name__ for s in generated_sections()])
def test_generated_part_is_current(section: GeneratedSection) -> None:
    """The option reference (the schema), the BasicSR and traiNNer-redux tables (the one names table) and the
    preset table (framework/archs/presets.py), each in its docs/ file."""
    text = (REPO / section.path).read_text(encoding="utf-8")
    assert section.start in text and section.end in text, f"{section.path}: markers missing"
    current = text[text.index(section.start):text.index(section.end) + len(section.end)]
    assert current == section.make(), "run: python scripts/options_doc.py --write"


def test_every_schema_key_is_documented() -> None:
    from framework import options as o

    text = (REPO / "docs" / "options.md").read_text(encoding="utf-8")
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


def test_readme_is_a_front_page() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) < 300


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(markdown: str) -> List[str]:
    """The heading texts of a Markdown file, outside fenced code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.*)", line)):
            found.append(match.group(1))
    return found


def anchors(markdown: str) -> set:
    """Every anchor of a file, with GitHub's -1, -2 ... suffixes for repeated headings."""
    seen: Dict[str, int] = {}
    result = set()
    for heading in headings(markdown):
        slug = github_slug(heading)
        result.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return result


def relative_links(markdown: str) -> List[str]:
    """The targets of the inline links and images that are not URLs, outside fenced code blocks."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]


def broken_links(page: Path) -> List[Tuple[str, str]]:
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append((target, "no such file"))
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file.read_text(encoding="utf-8"))):
            broken.append((target, "no such heading"))
    return broken


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_link_check_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n\n## The `x` key (y)\n\n## Top\n\n```\n# not a heading\n```\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md) [ok](a.md#the-x-key-y) [ok](a.md#top-1) [ok](#here) [web](https://x.org/#y)\n"
                    "# Here\n[bad](a.md#not-a-heading) [bad](missing.md) [bad](#nowhere)\n")
    assert broken_links(page) == [("a.md#not-a-heading", "no such heading"), ("missing.md", "no such file"),
                                  ("#nowhere", "no such heading")]
