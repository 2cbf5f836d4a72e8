"""Retrieval metrics that plugins add (hook ``register_metrics``): what they receive, and
how the engine finds them.

A plugin metric is a function ``metric(codes: CodeSets) -> np.ndarray`` that returns one
value per query; the engine logs their mean under the registered name and keeps the
per-query values (under :func:`per_query_name`) for intervals and paired tests. A
metric may count ties with :func:`bench.evaluation.hamming.count_ties` on bytes of its own
(another distance) and score them with :mod:`bench.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from bench.api.pluginhost import PluginHost, default_host


@dataclass(frozen=True)
class CodeSets:
    """Both code sets of one evaluation, as the engine checked them.

    ``query`` / ``gallery``: (N, K) int8 codes in {-1, +1}; ``*_labels``: dense int64
    identity labels (equal labels = relevant); ``device``: where to count (``cpu`` or a
    CUDA device).
    """

    query: np.ndarray
    query_labels: np.ndarray
    gallery: np.ndarray
    gallery_labels: np.ndarray
    device: str

    @property
    def bits(self) -> int:
        """The code length K."""
        return int(self.query.shape[1])


PluginMetric = Callable[[CodeSets], np.ndarray]


def per_query_name(metric: str) -> str:
    """The key of a metric's per-query values: ``map_X`` -> ``ap_X``, other names unchanged.

    >>> per_query_name("map_legacy"), per_query_name("precision_at_3")
    ('ap_legacy', 'precision_at_3')
    """
    return "ap" + metric[3:] if metric.startswith("map") else metric


def registered_metrics(names: Iterable[str] | None = None, host: PluginHost | None = None) -> dict[str, PluginMetric]:
    """The metrics the plugins register (all, or those of ``names`` that are), by name."""
    registry = (host or default_host()).metrics
    wanted = registry.names() if names is None else [n for n in names if n in registry]
    return {name: registry.get(name) for name in wanted}
