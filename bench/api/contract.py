"""The plugin contract's checks: the ``register`` callback every hook receives, and the
checks that hold a plugin to the table of kinds (:data:`bench.api.kinds.KINDS`: what each
kind of registered factory is called with and returns), before anything is built and on
what a factory builds.

``ctx`` is the run's :class:`~bench.api.interfaces.BuildContext`; ``feature_dims`` the
backbone's ``{name: width}``; ``output_dims`` the head's outputs plus the backbone's
features as ``feat:<name>``. ``options`` come from the method config (``--set``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext, HashHead, LossPart
from bench.api.kinds import KINDS
from bench.api.registry import check_options

if TYPE_CHECKING:  # the host imports the hook specs, which import this module
    from bench.api.methods import DeepMethodConfig, Method
    from bench.api.pluginhost import PluginHost


class Register(Protocol):
    """The callback each ``register_*`` hook receives: call it once per thing provided;
    ``description`` defaults to the first paragraph of the factory's docstring."""

    def __call__(self, name: str, factory: Callable[..., object] | Method, description: str = "") -> None: ...


BUILDS: dict[str, type] = {"backbones": Backbone, "heads": HashHead, "losses": LossPart}
"""The base class of what each kind's factory builds, for the kinds whose parts are checked when built."""


def check_factory(kind: str, name: str, factory: Any, options: dict[str, Any]) -> None:
    """Raise a one-line :class:`BenchError` unless ``factory`` (registered as ``name`` of
    ``kind``, a key of :data:`KINDS` with a factory call) accepts the harness's call with ``options``.

    >>> def head(ctx, feature_dims, width=8): ...
    >>> check_factory("heads", "h", head, {"width": 4})
    >>> check_factory("heads", "h", lambda ctx: None, {})
    Traceback (most recent call last):
    bench.api.errors.BenchError: head 'h' cannot be called as factory(ctx, feature_dims, **options): too many positional arguments
    """
    spec = KINDS[kind]
    placeholders = (None,) * (spec.leading or 0)
    check_options(spec.label, name, factory, placeholders, options)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    try:
        signature.bind(*placeholders, **options)
    except TypeError as exc:
        raise BenchError(f"{spec.label} '{name}' cannot be called as {spec.call}: {exc}") from None


def check_parts(host: PluginHost, config: DeepMethodConfig) -> None:
    """Every part of a deep config exists and accepts its options (nothing is built)."""
    parts = [("backbones", config.backbone.name, config.backbone.options),
             ("heads", config.head.name, config.head.options)]
    parts += [("losses", term.name, term.options) for term in config.losses]
    for kind, name, options in parts:
        entry, variant = host.registries[kind].resolve(name)
        if variant is not None:
            options = {"variant": variant, **options}
        check_factory(kind, name, entry.factory, options)


def check_built(kind: str, name: str, part: Any, ctx: BuildContext) -> None:
    """Raise a one-line :class:`BenchError` unless the ``kind`` part built as ``name``
    subclasses its base class and sets the attributes the base class declares."""
    spec = KINDS[kind]
    base = BUILDS.get(kind)
    if base is not None and not isinstance(part, base):
        raise BenchError(f"{spec.label} '{name}' built a {type(part).__name__}, not a "
                         f"{base.__module__}.{base.__name__}; subclass it")
    if isinstance(part, Backbone) and not part.feature_dims:
        raise BenchError(f"backbone '{name}' sets no feature_dims; set self.feature_dims = "
                         "{name: width} in __init__")
    if isinstance(part, HashHead) and part.output_dims.get("u") != ctx.bits:
        raise BenchError(f"head '{name}' gives output_dims {part.output_dims}; set self.output_dims "
                         f"in __init__, with 'u' of width {ctx.bits} (the run's bits)")
