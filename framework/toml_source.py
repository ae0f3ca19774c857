"""neosr's TOML option files, rewritten as YAML text, so the option checks and the converter read them as they
read every other file: the same messages, at the TOML file's lines.

The rewrite keeps comments (neosr's templates carry their alternatives as commented-out tables) and key
order; tables become nested mappings, gathered under their parent wherever their headers stand. It is checked
against Python's own TOML parser: what does not read back as the same data, or one line for one line (TOML
forms beyond a template's plain tables and ``key = value`` lines, a string over several lines), falls back to
a plain dump of the parsed data, without comments or line numbers.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import yaml

from .errors import UserError

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=(.*)$")


@dataclass
class _Table:
    """One table: its own lines (YAML text, TOML line) in file order, then its sub-tables."""

    line: int  # the TOML line of its header (of its first sub-table's header when it has none)
    comment: str = ""  # the header line's comment
    lead: List[Tuple[str, int]] = field(default_factory=list)  # comments above its header
    body: List[Tuple[str, int, bool]] = field(default_factory=list)  # (text, line, is a key)
    children: Dict[str, "_Table"] = field(default_factory=dict)


def toml_as_yaml(text: str, filename: str) -> Tuple[str, List[int]]:
    """The YAML text of a TOML file, and for each of its lines the TOML line it comes from (all 0: the plain
    dump, without comments or lines)."""
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{filename}: invalid TOML: {exc}") from exc
    try:
        rewritten = _rewrite(text)
        if rewritten is not None and len(rewritten[0].splitlines()) == len(rewritten[1]) \
                and yaml.safe_load(rewritten[0]) == data:
            return rewritten
        dumped = f"# {filename}, as YAML (its comments are in the TOML file)\n" + yaml.safe_dump(
            data, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as exc:  # a TOML time of day: YAML has no such value
        raise UserError(f"{filename}: holds a value YAML cannot hold (a TOML time of day, such as 07:32:00); write "
                        "it as a string") from exc
    return dumped, [0] * len(dumped.splitlines())


def _rewrite(text: str) -> Optional[Tuple[str, List[int]]]:
    """The line-by-line rewrite (None: a form it does not handle, for the plain dump instead)."""
    root = _Table(line=0)
    table, pending = root, []  # comments and blank lines not yet placed
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line, number = lines[index], index + 1
        index += 1
        if not line.strip() or line.strip().startswith("#"):
            pending.append((_comment(line.strip()), number))
            continue
        header = _HEADER.match(line)
        if header:
            table = _open_table(root, table, pending, header, number)
            pending = []
            continue
        statement = _statement(lines, index - 1)
        if statement is None:
            return None  # an array of tables, a dotted or quoted key
        text_line, index = statement
        table.body += [(comment, n, False) for comment, n in pending] + [(text_line, number, True)]
        pending = []
    table.body += [(comment, n, False) for comment, n in pending]
    out: List[Tuple[str, int]] = []
    _emit(root, 0, out)
    return "\n".join(text for text, _ in out) + "\n", [number for _, number in out]


def _open_table(root: _Table, above: _Table, pending: List[Tuple[str, int]], header: re.Match,
                number: int) -> _Table:
    """The table a ``[header]`` line opens. Comments up to the last blank line before it close the table above;
    those touching the header open this one."""
    cut = max((i + 1 for i, (comment, _) in enumerate(pending) if not comment), default=0)
    above.body += [(comment, n, False) for comment, n in pending[:cut]]
    table = _table_at(root, [part.strip() for part in header.group(1).split(".")], number)
    table.line, table.comment, table.lead = number, (header.group(2) or "").strip(), pending[cut:]
    return table


def _statement(lines: List[str], index: int) -> Optional[Tuple[str, int]]:
    """The YAML line of the ``key = value`` statement starting at ``lines[index]`` and the index after it (a
    value may run over several lines; comments inside it are not kept). None: not a plain key."""
    key = _KEY.match(lines[index])
    if key is None:
        return None
    value_text, index = key.group(2), index + 1
    value = _value(value_text)
    while value is None and index < len(lines):
        value_text += "\n" + lines[index]
        index += 1
        value = _value(value_text)
    return (_yaml_line(key.group(1), value), index) if value is not None else None


def _comment(comment: str) -> str:
    """A comment; a commented-out ``key = value`` written as YAML (``#key: value``)."""
    rest = comment[1:]
    statement = _KEY.match(rest)
    value = _value(statement.group(2)) if statement else None
    if statement is None or value is None:
        return comment
    return f"#{rest[:len(rest) - len(rest.lstrip())]}{_yaml_line(statement.group(1), value)}"


def _yaml_line(key: str, value: Tuple[Any, str]) -> str:
    """``key: value  # comment`` of a statement's key and its (value, trailing comment)."""
    return f"{_yaml(key)}: {_yaml(value[0])}{value[1]}"


def _table_at(root: _Table, path: List[str], line: int) -> _Table:
    """The table at ``path``, made (with its parents) where missing; ``line`` numbers the ones made."""
    table = root
    for name in path:
        table = table.children.setdefault(name, _Table(line=line))
    return table


def _value(value_text: str) -> Optional[Tuple[Any, str]]:
    """The value of a ``key = value`` statement and its trailing comment (None: the value is not complete)."""
    try:
        value = tomllib.loads(f"v ={value_text}")["v"]
    except tomllib.TOMLDecodeError:
        return None
    if "\n" not in value_text:
        for match in re.finditer("#", value_text):  # the first '#' outside the value starts its comment
            try:
                if tomllib.loads(f"v ={value_text[:match.start()]}")["v"] == value:
                    return value, "  " + value_text[match.start():].strip()
            except tomllib.TOMLDecodeError:
                continue
    return value, ""


def _yaml(value: Any) -> str:
    """``value`` as one line of YAML (flow style; quoted where YAML would read it otherwise)."""
    dumped = yaml.safe_dump({"v": value}, default_flow_style=True, width=10**9, allow_unicode=True).strip()
    return dumped[len("{v: "):-1]


def _emit(table: _Table, depth: int, out: List[Tuple[str, int]]) -> None:
    """``table``'s lines at ``depth``, then its sub-tables, each under a ``name:`` line, into ``out``."""
    indent = "  " * depth
    for text, number, _is_key in table.body:
        out.append((f"{indent}{text}" if text else "", number))
    for name, child in table.children.items():
        out += [(f"{indent}{comment}" if comment else "", number) for comment, number in child.lead]
        empty = not any(is_key for _, _, is_key in child.body) and not child.children
        comment = f"  {child.comment}" if child.comment else ""
        out.append((f"{indent}{_yaml(name)}:{' {}' if empty else ''}{comment}", child.line))
        _emit(child, depth + 1, out)
