"""Name -> factory registries, one per kind of plugin part, with clear "unknown" errors."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bench.api.errors import BenchError, unknown_name


@dataclass(frozen=True)
class Entry:
    """One registered thing and the plugin that provided it."""

    name: str
    factory: Any
    plugin: str
    version: str
    description: str = ""


class Registry:
    """Maps names to factories for one kind (``backbone``, ``head``, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        if entry.name in self._entries:
            other = self._entries[entry.name]
            raise BenchError(
                f"{self.kind} '{entry.name}' registered twice (by {other.plugin} and "
                f"{entry.plugin}); rename one of them"
            )
        self._entries[entry.name] = entry

    def __contains__(self, name: str) -> bool:
        try:
            self.resolve(name)
        except BenchError:
            return False
        return True

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def resolve(self, name: str) -> tuple[Entry, str | None]:
        """Find ``name``; ``family:variant`` names resolve to the ``family:`` entry.

        Returns the entry and the variant (``None`` for plain names).
        """
        if name in self._entries:
            return self._entries[name], None
        if ":" in name:
            family, variant = name.split(":", 1)
            entry = self._entries.get(family + ":")
            if entry is not None and variant:
                return entry, variant
        raise unknown_name(self.kind, name, self.names(),
                           {e.name: e.description for e in self._entries.values()})

    def get(self, name: str) -> Any:
        return self.resolve(name)[0].factory

    def build(self, name: str, *args: Any, **options: Any) -> Any:
        """Call the factory of ``name`` after checking ``options`` against its signature."""
        entry, variant = self.resolve(name)
        if variant is not None:
            options = {"variant": variant, **options}
        check_options(self.kind, name, entry.factory, args, options)
        return entry.factory(*args, **options)


def check_options(
    kind: str, name: str, factory: Callable[..., Any], args: tuple, options: Mapping[str, Any]
) -> None:
    """Raise a one-line error when ``options`` do not fit ``factory``'s keyword parameters."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    positional = list(params)[: len(args)]
    known = [p for p in params if p not in positional]
    for key in options:
        if key not in known:
            raise BenchError(
                f"unknown option '{key}' for {kind} '{name}'; known options: "
                f"{', '.join(known) or 'none'}"
            )
