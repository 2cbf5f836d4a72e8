"""Retrieval metrics that plugins add (hook ``register_metrics``): what they receive, and
how the engine finds them.

A plugin metric is a function ``metric(codes: CodeSets) -> np.ndarray`` that returns one
value per query; the engine logs their mean under the registered name and keeps the
per-query values (under :func:`per_query_name`) for intervals and paired tests. A
metric may count ties with :func:`bench.evaluation.hamming.count_ties` on bytes of its own
(another distance) and score them with :mod:`bench.evaluation.metrics`.

A metric marked with :func:`opt_in` (one that costs much more than the counting pass, e.g.
a sort per query) is computed only when asked for by name: listed in the protocol's
``evaluation.opt_in_metrics``, or named to ``bench eval --metric``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost


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


@dataclass(frozen=True)
class OptInMetric:
    """A plugin metric that evaluations compute only when it is named (:func:`opt_in`)."""

    metric: PluginMetric

    def __call__(self, codes: CodeSets) -> np.ndarray:
        return self.metric(codes)


def opt_in(metric: PluginMetric) -> OptInMetric:
    """Mark a plugin metric as opt-in: evaluations compute it only when it is named.

    >>> is_opt_in(opt_in(lambda codes: None)), is_opt_in(lambda codes: None)
    (True, False)
    """
    return OptInMetric(metric)


def is_opt_in(metric: PluginMetric) -> bool:
    """Whether ``metric`` was marked with :func:`opt_in`."""
    return isinstance(metric, OptInMetric)


def registered_metrics(
    host: PluginHost, names: Iterable[str] | None = None, opt_in_metrics: Iterable[str] = ()
) -> dict[str, PluginMetric]:
    """The metrics the plugins of ``host`` register, by name: those of ``names`` that are registered
    (opt-in ones included), or, without ``names``, every metric not marked opt-in plus the
    opt-in ones named in ``opt_in_metrics`` (an unknown or not opt-in name there is a BenchError)."""
    registry = host.metrics
    if names is not None:
        return {name: registry.get(name) for name in names if name in registry}
    chosen = {name: registry.get(name) for name in registry.names() if not is_opt_in(registry.get(name))}
    optional = opt_in_names(host)
    for name in opt_in_metrics:
        if name not in optional:
            raise BenchError(
                f"evaluation.opt_in_metrics: '{name}' is not an opt-in metric; the opt-in "
                f"metrics are {', '.join(optional) or 'none'}"
            )
        chosen[name] = registry.get(name)
    return chosen


def opt_in_names(host: PluginHost) -> list[str]:
    """The metrics the plugins of ``host`` register marked opt-in, sorted."""
    registry = host.metrics
    return [name for name in registry.names() if is_opt_in(registry.get(name))]
