"""Validation machinery: YAML with line numbers, typed fields, and ``type:`` components checked against signatures.

The option classes in :mod:`framework.options` are frozen dataclasses; their fields (type hints plus the
metadata set by :func:`opt`) are the single schema that validation walks and docs/options.md's option reference is
generated from, so documentation and validation cannot drift apart.

Every problem found is collected as a :class:`Problem` (key path, message); all of them are reported together
with file and line, so a user fixes a whole file in one go instead of one typo per run.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from collections import abc
import math
import types
import typing
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import yaml

from .basicsr_names import Fix, component_fix, key_fix
from .errors import UserError, did_you_mean, first_line
from .registry import Registry

Path_ = Tuple[Union[str, int], ...]


def path_str(path: Path_) -> str:
    """``('train', 'scheduler', 'milestones', 1)`` -> ``train.scheduler.milestones[1]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


@dataclass
class Problem:
    path: Path_
    message: str
    # A BasicSR / Real-ESRGAN name: what to do about it (scripts/convert_options.py applies it).
    fix: Optional[Fix] = None


# ----------------------------------------------------------------------------------------------------------------
# What a registered component declares about its options (framework.option_rules has the kinds' own specs)

# (the whole options (framework.options.Options), the component, its key path, problems) -> more problems. It
# runs when the component's type is valid; an argument it reads may have a problem of its own
# (framework.option_rules.keys_valid says which are valid).
ComponentRule = Callable[[Any, "Component", Path_, List[Problem]], None]


@dataclass(frozen=True)
class ComponentSpec:
    """What a registered class or function says about its ``{type: ..., ...}`` block beyond its signature."""

    # Arguments it has no use for, each with the message that says why (instead of "did you mean").
    refused: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Its own rule over its arguments and the other options.
    rule: Optional[ComponentRule] = None


S = TypeVar("S", bound=ComponentSpec)


def spec_of(target: Any, kind: Type[S]) -> S:
    """The ``option_spec`` a registered class or function declares; the kind's default without one."""
    spec = getattr(target, "option_spec", None)
    return spec if isinstance(spec, kind) else kind()


class Invalid(Exception):
    """Raised by coercion of one value; turned into a :class:`Problem` at its key path."""


# ----------------------------------------------------------------------------------------------------------------
# YAML with line numbers and duplicate-key detection


class YamlSource:
    """A parsed YAML document plus the line of each key, so errors can say ``file:line: key: problem``."""

    def __init__(self, text: str, filename: str, line_map: Optional[Sequence[int]] = None) -> None:
        self.filename = filename
        self.text = text
        # The file's own line of each line of ``text``, where the text is a rewrite (a TOML file's YAML).
        self._line_map = line_map
        self.lines: Dict[Path_, int] = {}
        # Per key: the last line of its value (1-based), so a tool can cut or comment out the whole block.
        self.last_lines: Dict[Path_, int] = {}
        self.duplicates: List[Problem] = []
        self._text_lines = text.splitlines()
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = self.at(mark.line + 1) if mark is not None else filename
            problem = getattr(exc, "problem", None) or first_line(exc)
            raise UserError(f"{where}: invalid YAML: {problem}") from exc
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, path: Path_) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: Dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append(Problem(path + (key,), f"duplicate key (first at line {seen[key]}); "
                                                                  "YAML keeps only the last one"))
                seen[key] = line
                self.lines[path + (key,)] = line
                self.last_lines[path + (key,)] = max(line, self._last_line(value_node.end_mark))
                self._index(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[path + (i,)] = item.start_mark.line + 1
                self._index(item, path + (i,))

    def _last_line(self, end: yaml.Mark) -> int:
        """The 1-based last line of a value ending at ``end``. A block value ends where the next key starts:
        at column 0 of the line after, or (a list written at its key's indent) at that key, whose line is not
        the value's."""
        text = self._text_lines[end.line] if end.line < len(self._text_lines) else ""
        return end.line + 1 if text[:end.column].strip() else end.line

    def where(self, path: Path_) -> str:
        """``file:line`` of the closest key on ``path`` that exists in the file."""
        return self.at(self.line(path))

    def at(self, line: int) -> str:
        """``file:line`` of a line of the text, as the user's file numbers it."""
        shown = self.file_line(line)
        return f"{self.filename}:{shown}" if shown else self.filename

    def file_line(self, line: int) -> int:
        """The user's file's number of a (1-based) line of the text (0: none)."""
        if self._line_map is None or not 0 < line <= len(self._line_map):
            return line
        return self._line_map[line - 1]

    def line(self, path: Path_) -> int:
        """The line of the closest key on ``path`` that exists in the file (0: none)."""
        for cut in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return 0


def source_keys(source: Optional["YamlSource"]) -> Mapping[Path_, int]:
    return source.lines if source is not None else {}


def format_problems(problems: Sequence[Problem], source: Optional[YamlSource],
                    overridden: Mapping[Path_, str] = MappingProxyType({})) -> str:
    """One line per problem: ``file:line: key.path: message`` (``--set key=value`` for command-line values),
    in the order of the file's lines (command-line values first), so a file is fixed top to bottom."""
    def order(p: Problem) -> int:
        from_command_line = any(p.path[:n] in overridden for n in range(len(p.path), 0, -1))
        return 0 if from_command_line or source is None else source.file_line(source.line(p.path))

    out = []
    for p in sorted(problems, key=order):
        origin = next((f"--set {overridden[p.path[:n]]}" for n in range(len(p.path), 0, -1)
                       if p.path[:n] in overridden), None)
        origin = origin or next((f"--set {arg}" for key, arg in overridden.items()
                                 if key[:len(p.path)] == p.path and key not in source_keys(source)), None)
        where = origin or (source.where(p.path) if source else "options")
        out.append(f"{where}: {path_str(p.path)}: {p.message}")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------------------
# Field metadata


def opt(default: Any = dataclasses.MISSING, *, doc: str, min: Optional[float] = None,
        max: Optional[float] = None, below: Optional[float] = None, above: Optional[float] = None,
        registry: Optional[Registry] = None, injected: Tuple[str, ...] = (), hint: str = "") -> Any:
    """A schema field: its default, its text in docs/options.md, bounds (``min``/``max`` inclusive, ``above``/``below``
    strict), and for components the registry and the arguments the framework passes itself."""
    meta = {"doc": doc, "min": min, "max": max, "above": above, "below": below, "registry": registry,
            "injected": injected, "hint": hint}
    if isinstance(default, (dict, list)):
        raise TypeError("use an immutable default")
    if isinstance(default, MappingProxyType):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Component:
    """A ``{type: Name, **kwargs}`` block: which registered class or function, and its arguments."""

    type: str
    kwargs: Mapping[str, Any]
    # A metric's BasicSR ``better: higher | lower``, kept beside the arguments (None: not given).
    better: Optional[str] = None
    # The preset ``type`` named (``span``): ``type`` and ``kwargs`` are what it resolved to.
    preset: Optional[str] = None

    def build(self, registry: Registry, **injected: Any) -> Any:
        return registry.get(self.type)(**dict(self.kwargs), **injected)

    def to_plain(self) -> Dict[str, Any]:
        extra = {"better": self.better} if self.better is not None else {}
        return {"type": self.type, **{k: plain(v) for k, v in self.kwargs.items()}, **extra}


def plain(value: Any) -> Any:
    """Options -> plain Python (dict/list/str/int/float/bool/None), for YAML dumps and safe checkpoints."""
    if isinstance(value, Component):
        return value.to_plain()
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.metadata.get("internal")}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def freeze(value: Any) -> Any:
    """Make a plain YAML value read-only (dict -> mappingproxy, list -> tuple)."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


# ----------------------------------------------------------------------------------------------------------------
# Coercion of one value to an annotation

_NUMBER_WORDS = {"inf": math.inf, ".inf": math.inf, "-inf": -math.inf, "-.inf": -math.inf}


def _as_number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _NUMBER_WORDS:
            return _NUMBER_WORDS[text]
        try:
            return float(text)  # YAML 1.1 reads 1e-4 and 5e3 as strings; users mean numbers
        except ValueError:
            return None
    return None


def _describe(value: Any) -> str:
    return "nothing (null)" if value is None else repr(value)


def coerce(value: Any, annotation: Any, path: Path_, problems: List[Problem]) -> Any:
    """Return ``value`` converted to ``annotation``; on a mismatch, record a problem and return ``value``."""
    try:
        return _coerce(value, annotation, path, problems)
    except Invalid as exc:
        problems.append(Problem(path, str(exc)))
        return value


def _coerce(value: Any, ann: Any, path: Path_, problems: List[Problem]) -> Any:
    if ann is Any or ann is inspect.Parameter.empty or ann is object:
        return freeze(value)
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        yaml_made = [a for a in candidates if _yaml_can_make(a)]
        candidates = yaml_made or candidates  # Tensor in `float | Tensor` is not the user's to write in YAML
        errors = []
        for cand in candidates:
            trial: List[Problem] = []
            try:
                result = _coerce(value, cand, path, trial)
            except Invalid as exc:
                errors.append(str(exc))
                continue
            if not trial:
                return result
            errors.append(trial[0].message)
        if len(candidates) == 1:
            raise Invalid(errors[0])
        raise Invalid(f"expected {_ann_name(ann)}, got {_describe(value)}")
    if origin is Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise Invalid(f"expected one of {choices}, got {_describe(value)}{did_you_mean(str(value), map(str, args))}")
    if origin in (tuple, list, abc.Sequence) or ann in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise Invalid(f"expected a list, got {_describe(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise Invalid(f"expected a list of {len(args)} items, got {len(value)}")
            return tuple(coerce(v, a, path + (i,), problems) for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        return tuple(coerce(v, item, path + (i,), problems) for i, v in enumerate(value))
    if origin in (dict, abc.Mapping) or ann is dict:
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping (key: value), got {_describe(value)}")
        return freeze(value)
    if ann is bool:
        if isinstance(value, bool):
            return value
        raise Invalid(f"expected true or false, got {_describe(value)}")
    if ann is int:
        number = _as_number(value)
        if number is None or (isinstance(number, float) and not (math.isfinite(number) and number.is_integer())):
            raise Invalid(f"expected a whole number, got {_describe(value)}")
        return int(number)
    if ann is float:
        number = _as_number(value)
        if number is None:
            raise Invalid(f"expected a number, got {_describe(value)}")
        return float(number)
    if ann is str:
        if isinstance(value, str):
            return value
        raise Invalid(f"expected a string, got {_describe(value)}")
    if isinstance(ann, type) and not isinstance(value, ann):
        raise Invalid(f"expected {_ann_name(ann)}, got {_describe(value)}")
    return freeze(value)


def _yaml_can_make(ann: Any) -> bool:
    """Whether a YAML value can be of this annotation (numbers, strings, lists, mappings, choices)."""
    origin = typing.get_origin(ann)
    if ann in (Any, bool, int, float, str, list, tuple, dict) or origin in (Literal, list, tuple, dict):
        return True
    if origin in (Union, types.UnionType):
        return any(_yaml_can_make(a) for a in typing.get_args(ann))
    return origin is not None and getattr(origin, "__module__", "") in ("collections.abc", "typing")


def _ann_name(ann: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
             type(None): "null"}
    if ann in names:
        return names[ann]
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        return " or ".join(_ann_name(a) for a in typing.get_args(ann))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(ann))
    if origin in (tuple, list) or ann in (tuple, list):
        return "a list"
    if origin in (dict, Mapping) or ann is dict:
        return "a mapping"
    return getattr(ann, "__name__", str(ann))


def describe_annotation(ann: Any) -> str:
    """Human text for the option reference in docs/options.md."""
    return _ann_name(ann)


# ----------------------------------------------------------------------------------------------------------------
# Dataclass sections and registry components


def check_bounds(value: Any, meta: Mapping[str, Any], path: Path_, problems: List[Problem]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and math.isnan(value):
        problems.append(Problem(path, "must be a number, got nan"))
        return
    lo, hi, above, below = meta.get("min"), meta.get("max"), meta.get("above"), meta.get("below")
    if lo is not None and value < lo:
        problems.append(Problem(path, f"must be at least {lo}, got {value}"))
    elif hi is not None and value > hi:
        problems.append(Problem(path, f"must be at most {hi}, got {value}"))
    elif above is not None and value <= above:
        problems.append(Problem(path, f"must be greater than {above}, got {value}"))
    elif below is not None and value >= below:
        problems.append(Problem(path, f"must be less than {below}, got {value}"))


def build_section(cls: type, raw: Any, path: Path_, problems: List[Problem]) -> Any:
    """Validate a mapping against dataclass ``cls`` and build it; unknown or missing keys become problems.

    Keys of BasicSR and Real-ESRGAN get their own message (:mod:`framework.basicsr_names`).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"expected a mapping (key: value), got {_describe(raw)}"))
        raw = {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")}
    for key in raw:
        if key not in fields:
            problems.append(unknown_key(path + (key,), raw[key], list(fields), "allowed"))
    values: Dict[str, Any] = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(Problem(path + (name,), "missing required key" +
                                        (f" ({f.metadata.get('hint')})" if f.metadata.get("hint") else "")))
                values[name] = None
            continue
        values[name] = build_value(raw[name], hints[name], f.metadata, path + (name,), problems)
    try:
        return cls(**values)
    except Exception:  # only reachable with problems already recorded
        return None


def build_value(value: Any, ann: Any, meta: Mapping[str, Any], path: Path_, problems: List[Problem]) -> Any:
    """One field: a nested section, a component, or a plain typed value with bounds."""
    base = _strip_optional(ann)
    if value is None and base is not ann:
        return None
    if base is Component:
        return build_component(value, meta["registry"], meta.get("injected", ()), path, problems)
    if dataclasses.is_dataclass(base):
        return build_section(typing.cast(type, base), value, path, problems)
    result = coerce(value, ann, path, problems)
    check_bounds(result, meta, path, problems)
    return result


def _strip_optional(ann: Any) -> Any:
    if typing.get_origin(ann) in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def signature_params(target: Callable) -> Tuple[Dict[str, inspect.Parameter], bool, Dict[str, Any]]:
    """The keyword parameters a registered class or function accepts, whether it takes ``**kwargs``, and hints."""
    func = target.__init__ if inspect.isclass(target) else target
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    params = {n: p for n, p in sig.parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return params, var_kw, hints


def build_component(raw: Any, registry: Registry, injected: Tuple[str, ...], path: Path_,
                    problems: List[Problem], also: Tuple[str, ...] = ()) -> Optional[Component]:
    """Check ``{type: X, ...}``: X is registered, every key is an argument of X, required ones are given."""
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"expected a mapping with a 'type' key, got {_describe(raw)}"))
        return None
    if "type" not in raw:
        problems.append(Problem(path + ("type",), f"missing required key (a registered {registry.kind}; "
                                                 f"known: {', '.join(registry.names())})"))
        return None
    name = raw["type"]
    preset = registry.preset_named(name)
    if preset is not None:  # a preset: its class, with its arguments under the user's
        name, arguments = registry.presets[preset]
        raw = {**arguments, **raw, "type": name}
    if not isinstance(name, str) or name not in registry:
        problem = not_registered(path + ("type",), registry, name)
        problems.append(problem)
        if problem.fix is None or problem.fix.action != "rename":
            return None
        name = problem.fix.new_value  # another spelling of a registered name: its arguments are checked too
    target = registry.get(name)
    package = getattr(target, "required_package", None)  # (module, pip name) of an optional dependency
    if package is not None and importlib.util.find_spec(package[0]) is None:
        problems.append(Problem(path + ("type",), f"{name} needs the {package[1]} package, which is not installed: "
                                                 f"pip install {package[1]}"))
    params, var_kw, hints = signature_params(target)
    kwargs: Dict[str, Any] = {}
    accepted = [n for n in params if n not in injected] + list(also)  # `also`: keys handled beside X
    for key, value in raw.items():
        if key == "type":
            continue
        if key in injected:
            problems.append(Problem(path + (key,), f"'{key}' is set by the framework for {name}; remove it"))
        elif key not in params and not var_kw:
            refused = spec_of(target, ComponentSpec).refused.get(key)  # a key it has no use for, and why
            problems.append(Problem(path + (key,), refused) if refused else
                            unknown_key(path + (key,), value, accepted, "accepted", owner=name))
        else:
            ann = hints.get(key, params[key].annotation if key in params else Any)
            kwargs[key] = coerce(value, ann, path + (key,), problems)
    for pname, p in params.items():
        if p.default is p.empty and pname not in raw and pname not in injected:
            problems.append(Problem(path + (pname,), f"missing required argument of {name}"))
    return Component(type=name, kwargs=MappingProxyType(kwargs), preset=preset)


def unknown_key(path: Path_, value: Any, known: Sequence[str], listed: str, owner: str = "") -> Problem:
    """A key the schema does not have: a BasicSR key is named as such (renamed, no use here, or not provided),
    anything else is a possible misspelling of one of ``known``."""
    key = str(path[-1])
    fix = key_fix(path, value)
    if fix is not None:
        return Problem(path, fix.message, fix)
    if owner:
        text = f"{owner} has no argument '{key}'"
    else:
        text = f"unknown key '{key}'" + (f" in {path_str(path[:-1])}" if path[:-1] else "")
    return Problem(path, f"{text}{did_you_mean(key, known)} ({listed}: {', '.join(known) or 'none'})")


def not_registered(path: Path_, registry: Registry, name: Any) -> Problem:
    """A ``type`` that is not registered: a known BasicSR / Real-ESRGAN one is named as such."""
    fix = component_fix(registry.kind, name, registry.names())
    if fix is not None and fix.action == "rename":  # the value of the key at ``path`` changes, the key stays
        fix = dataclasses.replace(fix, key=str(path[-1]), new_key=str(path[-1]))
    if fix is not None:
        return Problem(path, fix.message, fix)
    presets = f"; presets: {', '.join(sorted(registry.presets))}" if registry.presets else ""
    known = [*registry.names(), *registry.presets]
    return Problem(path, f"{registry.kind} '{name}' is not registered{did_you_mean(str(name), known)}"
                         f" (known: {', '.join(registry.names())}{presets})")
