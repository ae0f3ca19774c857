"""``scripts/convert_options.py theirs.yml -o ours.yml``: a BasicSR, Real-ESRGAN, traiNNer-redux or neosr option
file, converted.

The option checks themselves say what to change: every problem they attach a fix to (from the one table in
:mod:`framework.basicsr_names`) is applied to the text line by line, at the lines the YAML parser recorded,
so comments, key order and formatting stay as the user wrote them (a neosr TOML file is read as its YAML
rewrite, :mod:`framework.toml_source`, and written as YAML). Renames (with a value change where the
meaning needs one, ``num_gpu: 1`` -> ``device: cuda``, ``lq_size: 64`` -> ``gt_size: 256``) are made in place,
keys that belong in another section are moved there (``use_amp: true`` -> ``train.mixed_precision: fp16``), a
``model_type`` that a traiNNer-redux file implies is added; keys with no use here are replaced
by a one-line comment saying why; a metric this trainer lacks is commented out (it only reports); any other
missing feature (a model type, a discriminator) is kept, because dropping it would silently train something
else, and listed. A fix may reveal the next (a renamed section's keys), so the checks run again on the result
until nothing changes. Each change is printed on one line, at the input's line, then what is left to fix,
checked on the written file.

Exit codes: 0 written and the option checks pass; 3 written, with the listed items left to fix; 2 a user
error (nothing written).
"""
from __future__ import annotations

import argparse
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
import yaml

from ..errors import UserError
from ..options import read_source, validate
from ..basicsr_names import Fix
from ..schema import Path_, Problem, YamlSource, format_problems, path_str
from .args import add_verbose_argument

TOOL = "convert_options.py"
LEFT_TO_FIX = 3
PASSES = 3


@dataclass(frozen=True)
class Change:
    """One change, as printed, and the input's line it is at (the order they are printed in)."""

    line: int
    text: str


@dataclass
class Conversion:
    """The converted text, the changes made, and for each line of the text the line of the input it comes from
    (the line it was inserted at, for a new one)."""

    text: str
    changes: List[Change] = field(default_factory=list)
    origins: List[int] = field(default_factory=list)


def key_problems(source: YamlSource) -> List[Problem]:
    """The key-level problems of a parsed file (a test file is one without a ``train`` section)."""
    raw = source.data if isinstance(source.data, dict) else {}
    problems: List[Problem] = list(source.duplicates)
    validate(dict(raw), problems, require_train="train" in raw)
    return problems


def convert(source: YamlSource) -> Conversion:
    """Apply every fix the option checks attach to the problems of ``source`` to its text."""
    lines = source.text.splitlines()
    edits: Dict[int, List[str]] = {}  # first line index -> replacement lines (for the span it starts)
    spans: List[Tuple[int, int]] = []
    changes: List[Change] = []
    added: List[str] = []  # top-level lines to add (model_type)
    moves: Dict[str, List[Tuple[int, int]]] = {}  # section -> spans of top-level keys that belong in it
    translated: Dict[str, List[str]] = {}  # section -> lines of keys moved there under another name or value
    problems = sorted(key_problems(source), key=lambda p: source.line(p.path))  # a section before its keys
    renamed_into = {p.fix.new_key for p in problems if p.fix is not None and p.fix.action == "rename"
                    and len(p.path) == 1}
    for problem in problems:
        fix = problem.fix
        if fix is None or fix.action == "absent" and not fix.droppable:
            continue
        if fix.action == "add":
            added.append(f"{fix.new_key}: {_scalar(fix.new_value)}  # added by {TOOL}: {fix.why}")
            changes.append(Change(0, f"{source.filename}: {fix.new_key}: added, {_scalar(fix.new_value)} "
                                     f"({fix.why})"))
            continue
        path = problem.path if fix.action != "absent" else problem.path[:-1]  # a metric: its whole block
        if path not in source.lines or any(a <= source.lines[path] - 1 <= b for a, b in spans):
            continue
        if fix.action == "move" and _section_path(fix.new_key) not in source.lines and (
                "." in fix.new_key or fix.new_key in renamed_into):
            continue  # a nested section the file lacks: listed; one a rename makes now: the next pass
        first, last = _span(source, path, lines)
        if not _key_line(str(path[-1])).match(lines[first]):
            continue  # inside a flow mapping ({a: 1, b: 2}): left for the user, listed below
        edit, note, keeps_block = _edit(source, lines, fix, path, (first, last), moves, translated)
        edits[first] = edit
        changes.append(Change(source.file_line(first + 1), f"{source.at(first + 1)}: {path_str(path)}: {note}"))
        spans.append((first, first) if keeps_block else (first, last))
    for section, moved in moves.items():
        _insert_section(source, lines, edits, spans, section, moved, translated.pop(section, []))
    for section, block in translated.items():
        _append_to_section(source, lines, edits, spans, section, block)
    if added:
        _add_top_level(source, lines, edits, spans, added)
    out, origins = _assembled(lines, edits, spans)
    return Conversion("\n".join(out) + "\n", changes, origins)


def _edit(source: YamlSource, lines: List[str], fix: Fix, path: Path_, span: Tuple[int, int],
          moves: Dict[str, List[Tuple[int, int]]], translated: Dict[str, List[str]]) -> Tuple[List[str], str, bool]:
    """The lines that replace the key at ``path`` (lines ``span``), the change in words, and whether the key's
    block stays (a renamed section); keys moved as they are, or translated, are queued in ``moves`` and
    ``translated``."""
    first, last = span
    target = path[:-1] + (fix.new_key,)
    if fix.action == "rename" and target in source.lines and target != path:
        line = source.file_line(source.lines[target])
        at_line = f" at line {line}" if line else ""
        return ([_note(lines[first], f"{fix.key}: removed, {fix.new_key} is already set{at_line}")],
                f"removed ({fix.new_key} is already set{at_line})", False)
    if fix.action == "rename":
        value = f": {_scalar(fix.new_value)}" if fix.has_value else ""
        return ([_rename(lines[first], fix.key, fix.new_key, fix.new_value if fix.has_value else None)],
                f"renamed to {fix.new_key}{value} ({fix.why})", not fix.has_value)
    if fix.action == "move" and fix.has_value:
        comment = lines[first].partition(" #")[2].strip()
        translated.setdefault(fix.new_key, []).append(
            f"{fix.target}: {_scalar(fix.new_value)}  # was {path_str(path)}: {_scalar(_value(source, path))}"
            + (f"; {comment}" if comment else ""))
        return ([_note(lines[first], f"{fix.key}: moved by {TOOL} to {fix.new_key}.{fix.target}")],
                f"moved to {fix.new_key}.{fix.target}: {_scalar(fix.new_value)} ({fix.why})", False)
    if fix.action == "move":
        moves.setdefault(fix.new_key, []).append((first, last))
        return [], f"moved into the {fix.new_key} section ({fix.why})", False
    if fix.action == "remove":
        return [_note(lines[first], f"{fix.key}: removed by {TOOL}: {fix.why}")], f"removed ({fix.why})", False
    return ([_note(lines[first], f"{TOOL}: commented out, {fix.message}")]
            + [_comment_out(line) for line in lines[first:last + 1]], f"commented out ({fix.message})", False)


def _assembled(lines: List[str], edits: Dict[int, List[str]],
               spans: List[Tuple[int, int]]) -> Tuple[List[str], List[int]]:
    """The lines with each edited span replaced by its edit, and the line (1-based) each one comes from."""
    out: List[str] = []
    origins: List[int] = []
    skip_until = -1
    for index, line in enumerate(lines):
        if index <= skip_until:
            continue
        if index in edits:
            out += edits[index]
            origins += [index + 1] * len(edits[index])
            skip_until = next(b for a, b in spans if a == index)
        else:
            out.append(line)
            origins.append(index + 1)
    return out, origins


def convert_all(source: YamlSource) -> Conversion:
    """:func:`convert` until nothing changes (at most :data:`PASSES` times): a fix may reveal the next one (neosr's
    ``degradations`` renamed, its blur keys then move to the dataset). The changes name the input's lines, in
    their order; the origins are the input's lines too."""
    changes: List[Change] = []
    origins = [source.file_line(n) for n in range(1, len(source.text.splitlines()) + 1)]
    for passes in range(1, PASSES + 1):
        result = convert(source)
        if not result.changes:
            break
        changes += result.changes
        origins = [source.file_line(line) for line in result.origins]
        try:
            source = YamlSource(result.text, source.filename, origins)
        except UserError as exc:
            raise UserError(f"{source.filename}: {TOOL} wrote invalid YAML in its pass {passes} ({exc}); this is a "
                            "bug of the converter, please report it with the file; nothing was written") from exc
    return Conversion(source.text, sorted(changes, key=lambda change: change.line), origins)


def _section_path(section: str) -> Path_:
    """``datasets.train`` -> ``('datasets', 'train')``."""
    return tuple(section.split("."))


def _insert_section(source: YamlSource, lines: List[str], edits: Dict[int, List[str]],
                    spans: List[Tuple[int, int]], section: str, moved: List[Tuple[int, int]],
                    translated: List[str]) -> None:
    """The moved top-level keys (their lines, comments kept, then the ``translated`` lines of keys moved under
    another name) indented into ``section``: appended to it when the file has one, else a new ``section:``
    block where the first of them stood."""
    moved = sorted(moved)
    start, end = moved[0][0], moved[-1][1]
    inside = {i for first, last in moved for i in range(first, last + 1)}
    if all(i in inside or not lines[i].strip() or lines[i].lstrip().startswith("#") for i in range(start, end + 1)):
        moved = [(start, end)]  # one run of moved keys, blank lines and comments: moved whole, comments kept
        spans[:] = [(a, b) for a, b in spans if not start <= a <= end] + [(start, end)]
    block = _reindented([line for first, last in moved for line in lines[first:last + 1]], 0) + translated
    if _section_path(section) in source.lines:
        _append_to_section(source, lines, edits, spans, section, block)
        return
    first = moved[0][0]
    edits[first] = [f"{section}:  # top-level degradation keys, moved here by {TOOL}"] + _reindented(block, 2)


def _add_top_level(source: YamlSource, lines: List[str], edits: Dict[int, List[str]],
                   spans: List[Tuple[int, int]], added: List[str]) -> None:
    """``added`` top-level lines after ``scale`` (or ``name``; else first in the file)."""
    at = source.lines.get(("scale",), source.lines.get(("name",), 0)) - 1
    if at < 0:
        edits[0] = added + edits.get(0, lines[:1])
        at = 0
    else:
        edits[at] = edits.get(at, [lines[at]]) + added
    if not any(a == at for a, _ in spans):
        spans.append((at, at))


def _reindented(block: List[str], indent: int) -> List[str]:
    """``block`` shifted so that its least indented key starts at column ``indent``; a comment keeps its place
    relative to the keys, never left of ``indent`` (where it would end the section)."""
    keys = [line for line in block if line.strip() and not line.lstrip().startswith("#")]
    least = min((_indent(line) for line in keys or block if line.strip()), default=0)
    return [" " * (indent + max(0, _indent(line) - least)) + line.lstrip() if line.strip() else line
            for line in block]


def _child_indent(source: YamlSource, lines: List[str], section: Path_) -> int:
    """The column of the keys of ``section`` (the file's own indentation step)."""
    children = [n for path, n in source.lines.items() if len(path) == len(section) + 1 and path[:-1] == section]
    if children:
        return _indent(lines[min(children) - 1])
    return _indent(lines[source.lines[section] - 1]) + 2


def _append_to_section(source: YamlSource, lines: List[str], edits: Dict[int, List[str]],
                       spans: List[Tuple[int, int]], section: str, block: List[str]) -> None:
    """``block`` (unindented lines) indented at the end of ``section`` (dotted: ``datasets.train``); a new
    top-level one at the end of the file when there is none."""
    if _section_path(section) not in source.lines:
        end = len(lines) - 1
        block = [f"{section}:  # made by {TOOL}"] + _reindented(block, 2)
    else:
        _, end = _span(source, _section_path(section), lines)
        block = _reindented(block, _child_indent(source, lines, _section_path(section)))
    owner = next((a for a, b in spans if a <= end <= b), None)  # the last line is inside an edited span
    at = owner if owner is not None else end
    edits[at] = edits.get(at, [lines[at]]) + block
    if owner is None:
        spans.append((end, end))


def _value(source: YamlSource, path: Path_) -> Any:
    value: Any = source.data
    for part in path:
        value = value[part]
    return value


def _key_line(key: str) -> re.Pattern:
    """A block-style line that starts with ``key:`` (quoted or not, possibly as a list item)."""
    return re.compile(rf"^(\s*(?:-\s+)?)(['\"]?){re.escape(key)}\2(\s*):")


def _span(source: YamlSource, path: Path_, lines: List[str]) -> Tuple[int, int]:
    """0-based first and last line of a key and its value, without the blank lines and comments after it
    that belong to what follows (less or equally indented)."""
    first = source.lines[path] - 1
    last = min(source.last_lines.get(path, first + 1) - 1, len(lines) - 1)
    indent = _indent(lines[first])
    while last > first:
        stripped = lines[last].strip()
        if stripped and not (stripped.startswith("#") and _indent(lines[last]) <= indent):
            break
        last -= 1
    return first, last


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _note(line: str, text: str) -> str:
    return " " * _indent(line) + "# " + text


def _comment_out(line: str) -> str:
    return " " * _indent(line) + "# " + line.lstrip() if line.strip() else line


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _rename(line: str, key: str, new_key: str, new_value: Optional[Any]) -> str:
    """``key`` -> ``new_key`` on its line; with ``new_value``, the scalar value too, and the comment says
    what it was (the user's comment kept after it)."""
    renamed = _key_line(key).sub(lambda m: f"{m.group(1)}{new_key}{m.group(3)}:", line, count=1)
    if new_value is None:
        return renamed
    head, _, rest = renamed.partition(":")
    value, _, comment = rest.partition(" #")
    old = f"was {key}: {value.strip()}" + (f"; {comment.strip()}" if comment.strip() else "")
    return f"{head}: {_scalar(new_value)}  # {old}"


def write_atomically(path: str, text: str) -> None:
    """A temp file in the same folder, renamed over ``path``: a reader never sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_output_path(source: str, output: str, force: bool) -> None:
    if os.path.exists(output) and os.path.samefile(source, output):
        raise UserError(f"{output}: is the input file; the converter never overwrites it (choose another -o)")
    if os.path.isdir(output):
        raise UserError(f"{output}: is a folder; -o names the file to write")
    if output.lower().endswith(".toml"):
        raise UserError(f"{output}: the converter writes YAML; name the output .yml")
    if os.path.exists(output) and not force:
        raise UserError(f"{output}: exists; choose another -o, or add --force to replace it")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UserError(f"{output}: folder '{folder}' does not exist")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Convert a BasicSR, Real-ESRGAN, traiNNer-redux or neosr option file "
                                            "to this trainer's "
                                            "options, keeping comments and key order; prints each change and "
                                            "what is left to fix.")
    p.add_argument("input", help="the BasicSR / Real-ESRGAN / traiNNer-redux / neosr option file, YAML or "
                                 "neosr's TOML (never modified)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the option file to write")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_verbose_argument(p)
    return p


def main(argv: List[str]) -> int:
    args = parser().parse_args(argv)
    source = read_source(args.input)
    if not isinstance(source.data, dict):
        raise UserError(f"{args.input}: expected a mapping of option keys at the top level")
    check_output_path(args.input, args.output, args.force)
    result = convert_all(source)
    written = YamlSource(result.text, args.output)
    left = key_problems(written)
    write_atomically(args.output, result.text)
    if args.input.lower().endswith(".toml") and not source.file_line(1):  # toml_as_yaml's plain dump
        print(f"note: {args.input} has TOML forms beyond plain tables and key = value lines; it was read as a "
              "plain dump: the written file has none of its comments, and the lines below are the written file's")
    for change in result.changes:
        print(change.text)
    if not result.changes:
        print(f"{args.input}: nothing to change")
    if left:
        print(f"could not map ({len(left)}; the file is written, fix these by hand or wait for the feature):")
        for line in format_problems(left, written).splitlines():
            print(f"  {line}")
    print(f"wrote {args.output}" + ("" if left else "; the option checks pass (data and weight files are "
                                                     "checked by train.py / test.py --dry-run)"))
    if isinstance(written.data, dict) and written.data.get("device") == "cuda" and not torch.cuda.is_available():
        print("note: device: cuda, and this machine has no CUDA device; to run it here, write device: auto "
              "(CUDA when available, else CPU) or device: cpu")
    return LEFT_TO_FIX if left else 0
