"""Hamming retrieval evaluation: pure functions from codes and labels to metrics.

Gallery = training-split codes, queries = query-split codes, relevant = same identity.
This first engine ranks with a stable sort; the evaluation-engine issue replaces its
internals with exact tie-aware counting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.protocol import EvaluationSpec


@dataclass
class Evaluation:
    """Averaged metrics, the per-query AP (for confidence intervals) and extra curves."""

    metrics: dict[str, float]
    per_query_ap: np.ndarray
    curves: dict[str, list[float]] = field(default_factory=dict)


def hamming_distances(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Hamming distances between {-1,+1} codes: ``(K - q.g) / 2``.

    >>> hamming_distances(np.array([[1, 1, -1]]), np.array([[1, 1, -1], [-1, -1, 1]])).tolist()
    [[0, 3]]
    """
    k = query.shape[1]
    dots = query.astype(np.int32) @ gallery.astype(np.int32).T
    return (k - dots) // 2


def evaluate(
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    spec: EvaluationSpec | None = None,
) -> Evaluation:
    """mAP (stable ties), precision@K, precision/recall within the radius.

    >>> q = np.array([[1, 1]]); g = np.array([[1, 1], [-1, -1], [1, -1]])
    >>> e = evaluate(q, np.array([0]), g, np.array([0, 0, 1]))
    >>> round(e.metrics["map"], 4), e.metrics["recall_r2"]
    (0.8333, 1.0)
    """
    spec = spec or EvaluationSpec()
    dist = hamming_distances(query_codes, gallery_codes)
    relevant = query_labels[:, None] == gallery_labels[None, :]
    order = np.argsort(dist, axis=1, kind="stable")
    rel_sorted = np.take_along_axis(relevant, order, axis=1)
    hits = np.cumsum(rel_sorted, axis=1)
    ranks = np.arange(1, dist.shape[1] + 1)
    n_rel = relevant.sum(axis=1)
    ap = np.where(n_rel > 0, (rel_sorted * hits / ranks).sum(axis=1) / np.maximum(n_rel, 1), 0.0)
    metrics = {"map": float(ap.mean())}
    for k in spec.precision_at:
        kk = min(k, dist.shape[1])
        metrics[f"precision_at_{k}"] = float(hits[:, kk - 1].mean() / kk)
    within = dist <= spec.radius
    retrieved = within.sum(axis=1)
    rel_within = (within & relevant).sum(axis=1)
    precision = np.where(retrieved > 0, rel_within / np.maximum(retrieved, 1), 0.0)
    recall = np.where(n_rel > 0, rel_within / np.maximum(n_rel, 1), 0.0)
    metrics[f"precision_r{spec.radius}"] = float(precision.mean())
    metrics[f"recall_r{spec.radius}"] = float(recall.mean())
    metrics["queries_without_relevant"] = float(np.sum(n_rel == 0))
    return Evaluation(metrics, ap)
