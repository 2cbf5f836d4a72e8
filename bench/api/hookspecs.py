"""The plugin contract: every hook a facehash-bench plugin can implement, one per kind of
:data:`bench.api.kinds.KINDS` (``register_backbones``, ``register_heads``, ...).

Each hook receives a ``register`` callback and calls it once per thing it provides::

    from bench import hookimpl

    @hookimpl
    def register_heads(register):
        register("my-head", MyHead)

What each kind of factory is called with, returns and how it is checked is the table
:data:`bench.api.kinds.KINDS`; :mod:`bench.api.contract` holds the checks.
Plugins are found through the ``facehash_bench`` entry-point group (see :mod:`bench.api.pluginhost`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from bench.api.kinds import KINDS, Kind

if TYPE_CHECKING:  # the contract imports torch; plugins that only register need not
    from bench.api.contract import Register

PROJECT = "facehash_bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


def _hook_spec(kind: Kind) -> Callable[[Register], None]:
    """The hook spec of ``kind``: ``register_<kind>(register)``, documented from the table."""

    def spec(register: Register) -> None: ...

    spec.__name__ = spec.__qualname__ = kind.hook
    spec.__doc__ = (f"Register {kind.name}: ``{kind.call}`` returns {kind.returns}; checked: {kind.check}."
                    + (f"\n\n{kind.note}" if kind.note else ""))
    return hookspec(spec)


globals().update({kind.hook: _hook_spec(kind) for kind in KINDS.values()})
