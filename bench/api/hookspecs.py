"""The plugin contract: every hook a facehash-bench plugin can implement.

Each hook receives a ``register`` callback and calls it once per thing it provides::

    from bench import hookimpl

    @hookimpl
    def register_heads(register):
        register("my-head", MyHead)

What each kind of factory must accept and return is stated in :mod:`bench.api.contract`.
Plugins are found through the ``facehash_bench`` entry-point group (see :mod:`bench.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # the contract imports torch; plugins that only register need not
    from bench.api.contract import Register

PROJECT = "facehash_bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_backbones(register: Register) -> None:
    """Register backbones: ``factory(ctx: BuildContext, **options) -> Backbone``.

    A name ending in ``:`` (for example ``timm:``) is a prefix family: ``timm:resnet18``
    calls the factory with ``variant="resnet18"``.
    """


@hookspec
def register_heads(register: Register) -> None:
    """Register hashing heads: ``factory(ctx: BuildContext, feature_dims, **options) -> HashHead``."""


@hookspec
def register_losses(register: Register) -> None:
    """Register loss parts: ``factory(ctx: BuildContext, output_dims, **options) -> LossPart``."""


@hookspec
def register_methods(register: Register) -> None:
    """Register methods: instances of :class:`bench.api.methods.DeepMethod` or
    :class:`bench.api.methods.FittedMethod` (``factory`` is the method object itself)."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets: ``factory(data_root: Path | None, **options) -> FaceData``."""


@hookspec
def register_executors(register: Register) -> None:
    """Register executors: ``factory(**options) -> Executor`` (see :mod:`bench.running.executors`)."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register retrieval metrics that every evaluation computes beside the built-in ones:
    ``metric(codes: CodeSets) -> per-query values`` (see :mod:`bench.evaluation.plugin_metrics`).

    The registered name is the logged metric (their mean); a name ``map_X`` stores its
    per-query values as ``ap_X``, as the built-in ``map`` does as ``ap``.
    """


@hookspec
def register_normalisers(register: Register) -> None:
    """Register input normalisations, named by ``protocol.normalisation``:
    ``factory(images, split) -> Normaliser`` (see :class:`bench.data.preprocess.Normaliser`)."""


ALL_KINDS: dict[str, str] = {
    "backbones": "backbone",
    "heads": "head",
    "losses": "loss",
    "methods": "method",
    "datasets": "dataset",
    "executors": "executor",
    "metrics": "metric",
    "normalisers": "normaliser",
}


def hook_name(kind: str) -> str:
    """The hook that registers things of ``kind`` (``"heads"`` -> ``"register_heads"``)."""
    return f"register_{kind}"


