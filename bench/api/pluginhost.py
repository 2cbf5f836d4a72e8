"""Discover plugins through entry points and collect what they register.

Built-ins (``plugins``, ``dcbh``, ``baselines``) and third-party plugins load through the
same entry-point group, :data:`ENTRY_POINT_GROUP`. A plugin that fails to import or whose
hook raises is reported by name with its error; every other plugin keeps working.
Set ``FACEHASH_BENCH_DISABLE_PLUGIN_AUTOLOAD=1`` to load only this distribution's built-ins.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from bench.api import hookspecs
from bench.api.kinds import KINDS
from bench.api.registry import Entry, Registry

ENTRY_POINT_GROUP = "facehash_bench"
DISABLE_AUTOLOAD_ENV = "FACEHASH_BENCH_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DISTRIBUTION = "facehash-bench"


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised."""

    plugin: str
    error: str


@dataclass
class PluginHost:
    """The loaded plugin manager and one registry per kind of part."""

    manager: pluggy.PluginManager
    registries: dict[str, Registry]
    failures: list[PluginFailure] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def backbones(self) -> Registry:
        return self.registries["backbones"]

    @property
    def heads(self) -> Registry:
        return self.registries["heads"]

    @property
    def losses(self) -> Registry:
        return self.registries["losses"]

    @property
    def methods(self) -> Registry:
        return self.registries["methods"]

    @property
    def datasets(self) -> Registry:
        return self.registries["datasets"]

    @property
    def executors(self) -> Registry:
        return self.registries["executors"]

    @property
    def metrics(self) -> Registry:
        return self.registries["metrics"]

    @property
    def normalisers(self) -> Registry:
        return self.registries["normalisers"]


def _autoload_disabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _entry_points() -> list[metadata.EntryPoint]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in eps:  # the same distribution can be visible twice on odd sys.paths
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def load_plugins(extra_plugins: dict[str, Any] | None = None) -> PluginHost:
    """Load every plugin of the entry-point group (plus ``extra_plugins``, for tests).

    Each entry point is loaded on its own with ``load_setuptools_entrypoints(group, name)``
    so that one broken plugin cannot stop the others.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    versions: dict[str, str] = {}
    only_builtins = _autoload_disabled()
    for ep in _entry_points():
        dist = _dist_name(ep)
        if only_builtins and dist.lower() != BUILTIN_DISTRIBUTION:
            continue
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
        except Exception as exc:  # noqa: BLE001 - any import error is the plugin's problem
            failures.append(PluginFailure(ep.name, f"{type(exc).__name__}: {exc}"))
    for plugin, info in pm.list_plugin_distinfo():
        versions[pm.get_name(plugin) or repr(plugin)] = f"{info.project_name} {info.version}"
    for name, plugin in (extra_plugins or {}).items():
        pm.register(plugin, name=name)
        versions.setdefault(name, "(in process)")
    _check_pending(pm, failures)

    registries = {name: Registry(kind.label) for name, kind in KINDS.items()}
    for name, registry in registries.items():
        hook = KINDS[name].hook
        caller = getattr(pm.hook, hook)
        for impl in caller.get_hookimpls():
            plugin_name = impl.plugin_name
            register = functools.partial(
                _register, registry, plugin_name, versions.get(plugin_name, "")
            )
            try:
                impl.function(register=register)
            except Exception as exc:  # noqa: BLE001
                failures.append(
                    PluginFailure(plugin_name, f"{hook}: {type(exc).__name__}: {exc}")
                )
    return PluginHost(pm, registries, failures, versions)


def _check_pending(pm: pluggy.PluginManager, failures: list[PluginFailure]) -> None:
    """``check_pending()`` until clean: a plugin with a misspelled hook is reported and
    unregistered, so the others keep working."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            failures.append(PluginFailure(name, f"unknown hook: {exc}"))
            pm.unregister(exc.plugin)


def _register(
    registry: Registry, plugin: str, version: str, name: str, factory: Any, description: str = ""
) -> None:
    if not description:
        doc = (getattr(factory, "__doc__", None) or "").strip()
        description = " ".join(doc.split("\n\n")[0].split())  # the docstring's first paragraph
    registry.add(Entry(name, factory, plugin, version, description))


@functools.cache
def default_host() -> PluginHost:
    """The process-wide plugin host (loaded once)."""
    return load_plugins()
