"""Deviations as data: the one way a method (or the harness) names, in a run's tags, where
the run departs from its reference. ``Method.tags`` returns keys made by :func:`deviation_tag`;
the harness stores them under ``facehash.`` (:data:`bench.tracking.tags.DEVIATION_PREFIX`).
:func:`deviation_tags` compares a run's config with its reference configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # bench --help imports this module (through bench.tracking.tags): no pydantic at import
    from pydantic import BaseModel

DEVIATION = "deviation."


def deviation_tag(name: str) -> str:
    """The tag key of the deviation ``name``, as a method's ``tags()`` returns it.

    >>> deviation_tag("precision"), deviation_tag("config.optimizer.lr")
    ('deviation.precision', 'deviation.config.optimizer.lr')
    """
    return f"{DEVIATION}{name}"


def flatten_config(config: BaseModel) -> dict[str, Any]:
    """Flat ``{dotted.key: value}`` of a method config; loss terms are keyed by name.

    >>> from bench.api.methods import DeepMethodConfig
    >>> flat = flatten_config(DeepMethodConfig(backbone={"name": "b"}, head={"name": "h"},
    ...                       losses=[{"name": "q", "weight": 0.1, "options": {"alpha": 1.0}}]))
    >>> flat["losses.q.weight"], flat["losses.q.options.alpha"], flat["backbone.name"]
    (0.1, 1.0, 'b')
    """
    data = config.model_dump(mode="json")
    if isinstance(data.get("losses"), list):
        data["losses"] = {term.pop("name"): term for term in data["losses"]}
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix.rstrip(".")] = node

    walk(data, "")
    return flat


def deviation_tags(
    config: BaseModel, reference: BaseModel, fixed: dict[str, str], ignore: tuple[str, ...] = ()
) -> dict[str, str]:
    """``deviation.<name>`` for each fixed deviation and ``deviation.config.<key>`` for each
    setting that differs from ``reference`` (keys in ``ignore`` are skipped).

    >>> from bench.api.methods import OptimizerSpec
    >>> deviation_tags(OptimizerSpec(lr=0.1), OptimizerSpec(), {"x": "why"})
    {'deviation.x': 'why', 'deviation.config.lr': '0.1 (reference: 0.001)'}
    """
    tags = {deviation_tag(k): v for k, v in fixed.items()}
    actual, ref = flatten_config(config), flatten_config(reference)
    for key in sorted(set(actual) | set(ref)):
        if key in ignore or actual.get(key) == ref.get(key):
            continue
        tags[deviation_tag(f"config.{key}")] = f"{actual.get(key, 'absent')} (reference: {ref.get(key, 'absent')})"
    return tags
