"""Compare a method's run config with its reference configuration, for MLflow tags.

Methods that reproduce published code (DDH, DSH, DCBH) tag every deviation: the fixed
ones a port cannot avoid, plus every setting of the run that differs from the
reference (for example the optimizer replaced under ``standard=harness-standard``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bench.api.deviations import deviation_tag

#: The legacy evaluation family of the released DDH/DCBH code (``compactbit`` + ``hammingDist``:
#: ``cat_apcal`` mAP and precision@50, ``evaluate_macro`` precision/recall within radius 2),
#: asked for by name under ``standard=released`` (plugins/metrics registers them).
LEGACY_METRICS = ("map_legacy", "precision_at_50_legacy", "precision_r2_legacy", "recall_r2_legacy")


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


def published_reference(config: BaseModel, epochs: int) -> BaseModel:
    """``config`` (a method's released defaults) with the published epoch count, the reference
    a run's settings are compared with.

    >>> from types import SimpleNamespace
    >>> published_reference(SimpleNamespace(training=SimpleNamespace(epochs=50)), 600).training.epochs
    600
    """
    config.training.epochs = epochs
    return config


def reference_tags(
    method: str, reference_text: str, published_epochs: int, config: BaseModel, reference: BaseModel,
    fixed: dict[str, str], ignore: tuple[str, ...] = (),
) -> dict[str, str]:
    """``<method>.reference``, ``<method>.published_epochs`` and every deviation
    (:func:`deviation_tags`) of a run's ``config`` from ``reference``.

    >>> from bench.api.methods import OptimizerSpec
    >>> reference_tags("x", "github.com/a/b", 150, OptimizerSpec(lr=0.5), OptimizerSpec(), {})
    {'x.reference': 'github.com/a/b', 'x.published_epochs': '150', 'deviation.config.lr': '0.5 (reference: 0.001)'}
    """
    tags = {f"{method}.reference": reference_text, f"{method}.published_epochs": str(published_epochs)}
    tags.update(deviation_tags(config, reference, fixed, ignore=ignore))
    return tags
