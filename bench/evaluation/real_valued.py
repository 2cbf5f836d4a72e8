"""Retrieval metrics for real-valued embeddings ranked by exact cosine distance (the float top
line), through the same closed-form metrics as Hamming codes.

The distance is ``1 - cos(q, g)``, computed in float64 from the float32 embeddings (a zero
vector has cosine 0 to everything). A tie is a set of gallery items at exactly equal float64
distance from the query (in practice only duplicate embeddings tie). Per query the gallery
is sorted by distance (a stable sort, so the ``stable`` order breaks ties by gallery index)
and cut into its ties, in increasing distance: ``n[q, t]`` items and ``r[q, t]`` relevant
ones in the query's ``t``-th tie (columns past a query's last tie hold zeros). Every
ranking metric of :mod:`bench.evaluation.metrics` reads these counts exactly as it reads
Hamming tie counts (``map`` the expectation over a random order inside ties, ``map_best``
and ``map_worst`` its bounds, ``precision_at_K``, ``precision_at_r``, ``map_at_K``, CMC
``rank1``/``rank5``).

Verification thresholds are the distinct distances of all query-gallery pairs: a pair is
accepted when its distance is ``<=`` the threshold, so pairs at equal distance are never
split, as with Hamming thresholds (:mod:`bench.evaluation.verification`, whose TAR at FAR,
EER and ROC AUC are computed from the genuine and impostor histograms over these
thresholds). The Hamming-ball metrics (``precision_r2``, ``recall_r2``, ``empty_r2``) and
plugin metrics (defined on binary codes) do not apply and are not reported. The PR curve is
given at up to :data:`PR_POINTS` distance thresholds (quantiles of the pair distances, exact
at each), the ROC curve at up to :data:`ROC_POINTS` of its points; the metrics use every
threshold. Memory: the (Q, G) float64 distance matrix and counts of that size.
"""

from __future__ import annotations

import numpy as np

from bench.api.errors import BenchError
from bench.config.protocol import EvaluationSpec
from bench.evaluation import metrics as m
from bench.evaluation.engine import Evaluation, precision_at_r
from bench.evaluation.ties import TieCounts
from bench.evaluation.verification import (
    FAR_TARGETS,
    RANKS,
    equal_error_rate,
    expected_rank_hit,
    roc_auc,
    roc_points,
    tar_at_far,
)

PR_POINTS = 256
ROC_POINTS = 1001


def cosine_distances(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``1 - cos`` between every query and gallery row, float64 (Q, G).

    >>> cosine_distances(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, 0.0]])).tolist()
    [[0.0, 1.0, 2.0, 1.0]]
    """
    q, g = (np.asarray(a, dtype=np.float64) for a in (query, gallery))
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    return 1.0 - q @ g.T


def rank_counts(distances: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray) -> TieCounts:
    """Per-query tie counts of a real-valued distance matrix (Q, G): ``n[q, t]``, ``r[q, t]``
    over the query's ties in increasing distance, and the stable order's sum of hits/rank.

    Hand case: distances (0.1 rel, 0.5 non, 0.5 rel, 0.9 non): ties [1], [2], [1].

    >>> c = rank_counts(np.array([[0.1, 0.5, 0.5, 0.9]]), np.array([0]), np.array([0, 1, 0, 1]))
    >>> c.n.tolist(), c.r.tolist(), c.stable.tolist()   # stable: 1/1 + 2/3
    ([[1, 2, 1, 0]], [[1, 1, 0, 0]], [1.6666666666666665])
    """
    d = np.asarray(distances, dtype=np.float64)
    q, g = d.shape
    order = np.argsort(d, axis=1, kind="stable")  # equal distances keep gallery order
    sorted_d = np.take_along_axis(d, order, axis=1)
    relevant = np.asarray(gallery_labels)[order] == np.asarray(query_labels)[:, None]
    starts = np.ones((q, g), dtype=bool)
    starts[:, 1:] = sorted_d[:, 1:] != sorted_d[:, :-1]
    flat = (np.cumsum(starts, axis=1) - 1 + np.arange(q)[:, None] * g).ravel()
    n = np.bincount(flat, minlength=q * g).reshape(q, g)
    r = np.bincount(flat, weights=relevant.ravel(), minlength=q * g).reshape(q, g).astype(np.int64)
    hits = np.cumsum(relevant, axis=1)
    stable = np.where(relevant, hits / np.arange(1, g + 1), 0.0).sum(axis=1)
    return TieCounts(n, r, stable)


def pair_histograms(distances: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct pair distances (increasing) and the genuine and impostor pair counts at each.

    >>> v, g, i = pair_histograms(np.array([[0.2, 0.5], [0.5, 0.7]]), np.array([[True, False], [True, False]]))
    >>> v.tolist(), g.tolist(), i.tolist()
    ([0.2, 0.5, 0.7], [1, 1, 0], [0, 1, 1])
    """
    values, inverse = np.unique(np.asarray(distances, dtype=np.float64).ravel(), return_inverse=True)
    rel = np.asarray(relevant, dtype=bool).ravel()
    genuine = np.bincount(inverse[rel], minlength=len(values))
    impostor = np.bincount(inverse[~rel], minlength=len(values))
    return values, genuine, impostor


def evaluate_embeddings(
    query: np.ndarray,
    query_labels: np.ndarray,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    spec: EvaluationSpec | None = None,
) -> Evaluation:
    """Every metric of ``spec`` that applies to real-valued ranking (see the module's
    docstring), for float embeddings (Q, D) and (G, D) ranked by cosine distance.

    Hand case: the gallery lies at angles 0 (relevant), 90 (other) and 180 (relevant)
    degrees from the query: AP = (1/1 + 2/3) / 2 = 5/6, no ties.

    >>> e = evaluate_embeddings(np.array([[1.0, 0.0]]), np.array([0]),
    ...                         np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), np.array([0, 1, 0]))
    >>> round(e.metrics["map"], 4), e.metrics["rank1"], "precision_r2" in e.metrics
    (0.8333, 1.0, False)
    """
    spec = spec or EvaluationSpec()
    query, gallery = _checked(query, "query"), _checked(gallery, "gallery")
    if query.shape[1] != gallery.shape[1]:
        raise BenchError(f"query embeddings have {query.shape[1]} dimensions but gallery embeddings "
                         f"{gallery.shape[1]}; embed both with the same model")
    ql, gl = np.asarray(query_labels).ravel(), np.asarray(gallery_labels).ravel()
    if len(ql) != len(query) or len(gl) != len(gallery):
        raise BenchError(f"got {len(ql)} query labels for {len(query)} query embeddings and {len(gl)} gallery "
                         f"labels for {len(gallery)} gallery embeddings; pass one label per embedding")
    distances = cosine_distances(query, gallery)
    counts = rank_counts(distances, ql, gl)
    n, r = counts.n, counts.r
    per_query = {"ap": m.expected_ap(n, r), "ap_best": m.best_ap(n, r), "ap_worst": m.worst_ap(n, r),
                 "ap_stable": m.stable_ap(counts.stable, r)}
    metrics = {"map" + name[2:]: float(values.mean()) for name, values in per_query.items()}
    for k in spec.precision_ks(len(gallery)):
        metrics[f"precision_at_{k}"] = float(m.expected_precision_at(n, r, k).mean())
    metrics["precision_at_r"] = float(precision_at_r(n, r).mean())
    for k in spec.map_at:
        per_query[f"ap_at_{k}"] = m.expected_ap_at(n, r, k, spec.map_at_normalisation)
        metrics[f"map_at_{k}"] = float(per_query[f"ap_at_{k}"].mean())
    metrics["queries_without_relevant"] = float(np.sum(r.sum(axis=1) == 0))
    relevant = gl[None, :] == ql[:, None]
    values, genuine, impostor = pair_histograms(distances, relevant)
    metrics.update({name: tar_at_far(genuine, impostor, far) for name, far in FAR_TARGETS.items()})
    metrics["eer"] = equal_error_rate(genuine, impostor)
    metrics["roc_auc"] = roc_auc(genuine, impostor)
    per_query.update({f"rank{k}": expected_rank_hit(n, r, k) for k in RANKS})
    metrics.update({f"rank{k}": float(per_query[f"rank{k}"].mean()) for k in RANKS})
    curves = {**_pr_curve(distances, relevant, values), **_roc_curve(values, genuine, impostor)}
    return Evaluation(metrics, per_query["ap"], curves, per_query)


def _pr_curve(distances: np.ndarray, relevant: np.ndarray, values: np.ndarray) -> dict[str, list]:
    """The PR curve at up to :data:`PR_POINTS` thresholds among the distinct pair distances
    (retrieve every item with distance <= the threshold), exact at each."""
    thresholds = values[np.unique(np.linspace(0, len(values) - 1, min(PR_POINTS, len(values))).round().astype(int))]
    bins = np.searchsorted(thresholds, distances, side="left")  # thresholds[b-1] < d <= thresholds[b]
    q, t = len(distances), len(thresholds)
    flat = (bins + np.arange(q)[:, None] * t).ravel()
    n = np.bincount(flat, minlength=q * t).reshape(q, t)
    r = np.bincount(flat, weights=relevant.ravel(), minlength=q * t).reshape(q, t)
    curve = m.pr_curve(n, r)
    curve["pr_threshold"] = thresholds.tolist()
    return curve


def _roc_curve(values: np.ndarray, genuine: np.ndarray, impostor: np.ndarray) -> dict[str, list[float]]:
    """ROC points (thresholds: -1, accepting nothing, then the pair distances), at most
    :data:`ROC_POINTS` of them, the first and the last always kept."""
    roc = roc_points(genuine, impostor)
    roc["roc_threshold"] = [-1.0, *values.tolist()]
    keep = np.unique(np.linspace(0, len(values), min(ROC_POINTS, len(values) + 1)).round().astype(int))
    return {name: [points[i] for i in keep] for name, points in roc.items()}


def _checked(embeddings: np.ndarray, role: str) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise BenchError(f"{role} embeddings must be a non-empty (N, D) array, got shape {x.shape}; "
                         "check that the split has images and the backbone outputs features")
    if not np.all(np.isfinite(x)):
        raise BenchError(f"{role} embeddings hold NaN or infinite values; check the backbone's weights and inputs")
    return x
