"""The kinds of plugin, in one table: each kind's hook, how the harness calls what is
registered, what that must return and how the harness holds it to that.

The hook specs (:mod:`bench.api.hookspecs`), the factory checks (:mod:`bench.api.contract`),
the registries of the plugin host, ``bench plugins`` and README's plugin table are all
derived from :data:`KINDS`; ``tests/test_plugin_contract.py`` fails when they drift.
This module imports nothing heavy, so that a plugin that only registers loads no torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of registered thing."""

    name: str  # the registry's key and the hook's suffix: "heads"
    label: str  # one of them, as messages name it: "head"
    call: str  # how the harness calls what is registered, as the docs write it
    returns: str  # what the call must return (Markdown)
    check: str  # how the harness holds it to that (Markdown)
    leading: int | None = None  # positional arguments before the options; None: no factory check
    note: str = ""  # more for the hook's docstring

    @property
    def hook(self) -> str:
        """The hook that registers things of this kind (``"heads"`` -> ``"register_heads"``)."""
        return f"register_{self.name}"


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("backbones", "backbone", "factory(ctx, **options)",
         "a `Backbone` that sets `self.feature_dims = {name: width}`",
         "call before any run; built part: subclass, `feature_dims` not empty", leading=1,
         note="A name ending in ``:`` (for example ``timm:``) is a prefix family: ``timm:resnet18`` "
              "calls the factory with ``variant=\"resnet18\"``."),
    Kind("heads", "head", "factory(ctx, feature_dims, **options)",
         "a `HashHead` that sets `self.output_dims` (with `\"u\"` of width `ctx.bits`)",
         "call before any run; built part: subclass, `output_dims[\"u\"] == ctx.bits`", leading=2),
    Kind("losses", "loss", "factory(ctx, output_dims, **options)", "a `LossPart`",
         "call before any run; built part: subclass", leading=2),
    Kind("methods", "method", "(the registered object is the method)",
         "a `DeepMethod` or `FittedMethod` (`bench/api/methods.py`)",
         "its config validated (`--set`) and its bits checked (`check_bits`) before any run"),
    Kind("datasets", "dataset", "factory(data_root, **options)",
         "a `bench.data.faces.FaceData` (uint8 images, labels, split)",
         "options checked against the signature before loading; the data checked when cached", leading=1),
    Kind("executors", "executor", "factory(**options)",
         "an executor (`bench/running/executors/base.py`)", "options checked against the signature",
         leading=0),
    Kind("metrics", "metric", "metric(codes)",
         "per-query values from a `CodeSets` (codes in {-1, +1}, labels, device); the logged metric is "
         "their mean", "the name checked before any run",
         note="The registered name is the logged metric (their mean); a name ``map_X`` stores its "
              "per-query values as ``ap_X``, as the built-in ``map`` does as ``ap``."),
    Kind("normalisers", "normaliser", "factory(images, split)",
         "a `bench.data.preprocess.Normaliser`, named by `protocol.normalisation`",
         "the name checked before any run"),
)}


def readme_table() -> str:
    """README's plugin table (Markdown), one row per kind.

    >>> readme_table().splitlines()[2].split(" | ")[:2]
    ['| backbone', '`factory(ctx, **options)`']
    """
    rows = ["| kind | the registered factory is called as | and returns | checked |", "|---|---|---|---|"]
    calls = {k.name: k.call if k.call.startswith("(") else f"`{k.call}`" for k in KINDS.values()}
    rows += [f"| {k.label} | {calls[k.name]} | {k.returns} | {k.check} |" for k in KINDS.values()]
    return "\n".join(rows)
