"""Name -> class registries, so a YAML ``type:`` can name any registered network, dataset, loss, metric or model.

Users add their own with a decorator::

    from framework.registry import ARCH_REGISTRY

    @ARCH_REGISTRY.register()
    class MyNet(nn.Module): ...

and then write ``network_g: {type: MyNet, ...}`` in their options file.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, TypeVar

from .basicsr_names import component_fix
from .errors import UserError, did_you_mean

T = TypeVar("T", bound=Callable[..., Any])  # classes and functions


class _Lazy:
    """A registered name whose class is made on first use (spandrel's networks: importing spandrel costs
    seconds of start-up that runs of the other networks should not pay)."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self.load = load


class Registry:
    """A mapping from names to classes or functions, filled by the ``register`` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, Any] = {}
        # name -> (registered name, arguments): a lower-case name standing for a class with set arguments
        self.presets: Dict[str, Tuple[str, Mapping[str, Any]]] = {}

    def register_preset(self, name: str, target: str, arguments: Mapping[str, Any]) -> None:
        """``type: name`` in options means ``type: target`` with ``arguments`` (the user's keys override them)."""
        if name in self.presets or name in self._items or target not in self._items:
            raise ValueError(f"{self.kind} preset '{name}': taken, or '{target}' is not registered")
        self.presets[name] = (target, dict(arguments))

    def register(self, obj: Optional[T] = None, *, name: Optional[str] = None,
                 aliases: tuple = ()) -> Any:
        """Register ``obj`` under its ``__name__`` (or ``name``) and any ``aliases``; usable as a decorator."""

        def add(item: T) -> T:
            for key in (name or item.__name__, *aliases):
                if key in self._items and self._items[key] is not item:
                    raise ValueError(f"{self.kind} '{key}' is already registered")
                self._items[key] = item
            return item

        return add(obj) if obj is not None else add

    def register_lazy(self, name: str, load: Callable[[], Any]) -> None:
        """Register ``name`` now and make its class with ``load()`` when it is first looked up."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._items[name] = _Lazy(load)

    def get(self, name: str, where: str = "type") -> Any:
        """Look a name up; an unknown name is a user error that suggests the closest known one."""
        if name in self._items:
            item = self._items[name]
            if isinstance(item, _Lazy):
                item = self._items[name] = item.load()
            return item
        fix = component_fix(self.kind, name, self.names())
        if fix is not None:
            raise UserError(f"{where}: {fix.message}")
        raise UserError(f"{where}: {self.kind} '{name}' is not registered{did_you_mean(name, self._items)} "
                        f"(known: {', '.join(self.names())})")

    def preset_named(self, name: Any) -> Optional[str]:
        """The preset ``name`` stands for, matched exactly or, when no class has that name, ignoring case
        (traiNNer-redux's templates write ``type: Compact`` for its ``compact``); None when none."""
        if not isinstance(name, str) or name in self._items:
            return None
        if name in self.presets:
            return name
        return next((key for key in self.presets if key.lower() == name.lower()), None)

    def canonical(self, name: str) -> Optional[str]:
        """The registered spelling of ``name``, matched exactly or, failing that, ignoring case
        (traiNNer-redux writes ``l1loss`` for ``L1Loss``); None when nothing (or more than one) matches."""
        if name in self._items:
            return name
        matches = [key for key in self._items if key.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list:
        return sorted(self._items)

    def in_order(self) -> list:
        """The registered names in the order they were registered (built-ins first, as imported)."""
        return list(self._items)


ARCH_REGISTRY = Registry("arch")
DATASET_REGISTRY = Registry("dataset")
LOSS_REGISTRY = Registry("loss")
METRIC_REGISTRY = Registry("metric")
MODEL_REGISTRY = Registry("model")
OPTIMIZER_REGISTRY = Registry("optimizer")
SCHEDULER_REGISTRY = Registry("scheduler")
ALL_REGISTRIES = (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY, OPTIMIZER_REGISTRY,
                  SCHEDULER_REGISTRY)
