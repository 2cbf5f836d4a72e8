"""``evaluate``: {-1,+1} codes and identity labels -> every retrieval metric, and its artifacts.

Gallery and query codes come from the caller (the run's gallery and query parts); relevant = same identity.
One counting pass (:func:`bench.evaluation.hamming.count_ties`) yields the tie counts;
every built-in metric then follows in closed form (:mod:`bench.evaluation.metrics`, and
:mod:`bench.evaluation.verification` for ROC, TAR at FAR, EER, ROC AUC and rank-1/5).
Metrics that plugins register (:mod:`bench.evaluation.plugin_metrics`) are computed after.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.api.errors import BenchError
from bench.config.device import resolve_device
from bench.config.protocol import EvaluationSpec
from bench.evaluation import metrics as m
from bench.evaluation.codes import pack_codes
from bench.evaluation.hamming import count_ties
from bench.evaluation.plugin_metrics import CodeSets, PluginMetric, per_query_name
from bench.evaluation.verification import verification_metrics


@dataclass
class Evaluation:
    """Averaged metrics, per-query expected AP (for confidence intervals and paired tests),
    the PR curve, and every per-query array by metric name (``ap``, ``ap_best``, ...)."""

    metrics: dict[str, float]
    per_query_ap: np.ndarray
    curves: dict[str, list[float]] = field(default_factory=dict)
    per_query: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate(
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    spec: EvaluationSpec | None = None,
    *,
    device: str | None = None,
    plugin_metrics: Mapping[str, PluginMetric] | None = None,
) -> Evaluation:
    """All metrics of ``spec`` for (N, K) int8 codes in {-1,+1}.

    ``device``: ``'cpu'`` (numba kernel), ``'cuda'``/``'cuda:N'`` (torch), or None for
    CUDA when available. ``plugin_metrics``: the plugins' metrics to add, by name (default:
    none, the built-in metrics only; a run's are
    :func:`~bench.evaluation.plugin_metrics.registered_metrics` of its plugin host).

    Hand case (K = 2): the gallery lies at distances 0 (relevant), 1 (non-relevant),
    2 (relevant) from the query: AP = (1/1 + 2/3) / 2 = 5/6, no ties, so every variant agrees.

    >>> q = np.array([[1, 1]]); g = np.array([[1, 1], [-1, -1], [1, -1]])
    >>> e = evaluate(q, np.array([0]), g, np.array([0, 0, 1]), device="cpu", plugin_metrics={})
    >>> [round(e.metrics[k], 4) for k in ("map", "map_best", "map_worst", "map_stable")]
    [0.8333, 0.8333, 0.8333, 0.8333]
    >>> e.metrics["precision_r2"], e.metrics["recall_r2"], e.metrics["empty_r2"]
    (0.6666666666666666, 1.0, 0.0)
    """
    spec = spec or EvaluationSpec()
    query = _checked_codes(query_codes, "query")
    gallery = _checked_codes(gallery_codes, "gallery")
    if query.shape[1] != gallery.shape[1]:
        raise BenchError(
            f"query codes have {query.shape[1]} bits but gallery codes {gallery.shape[1]}; "
            "encode both with the same model"
        )
    ql, gl = _dense_labels(query_labels, len(query), gallery_labels, len(gallery))
    device = str(resolve_device(device or "auto"))
    bits = query.shape[1]
    counts = count_ties(pack_codes(query), ql, pack_codes(gallery), gl, bits, device)
    n, r = counts.n, counts.r
    per_query = {
        "ap": m.expected_ap(n, r),
        "ap_best": m.best_ap(n, r),
        "ap_worst": m.worst_ap(n, r),
        "ap_stable": m.stable_ap(counts.stable, r),
    }
    metrics = {
        "map" + name[2:]: float(values.mean()) for name, values in per_query.items()
    }
    codes = CodeSets(query, ql, gallery, gl, device)
    for name, metric in (plugin_metrics or {}).items():
        per_query[per_query_name(name)] = np.asarray(metric(codes), dtype=np.float64)
        metrics[name] = float(per_query[per_query_name(name)].mean())
    for k in spec.precision_ks(len(gallery)):
        metrics[f"precision_at_{k}"] = float(m.expected_precision_at(n, r, k).mean())
    metrics["precision_at_r"] = float(precision_at_r(n, r).mean())
    precision, recall, empty = m.radius_metrics(n, r, spec.radius)
    metrics[f"precision_r{spec.radius}"] = float(precision.mean())
    metrics[f"recall_r{spec.radius}"] = float(recall.mean())
    metrics[f"empty_r{spec.radius}"] = float(empty.sum())
    for k in spec.map_at:
        ap_at = m.expected_ap_at(n, r, k, spec.map_at_normalisation)
        per_query[f"ap_at_{k}"] = ap_at
        metrics[f"map_at_{k}"] = float(ap_at.mean())
    metrics["queries_without_relevant"] = float(np.sum(r.sum(axis=1) == 0))
    verification, cmc, roc = verification_metrics(n, r)  # the same counts, no second pass
    metrics.update(verification)
    per_query.update(cmc)
    return Evaluation(metrics, per_query["ap"], {**m.pr_curve(n, r), **roc}, per_query)


def precision_at_r(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per query, the expected precision of its top R, R = its number of relevant gallery
    items (R-precision; random order inside ties); 0 for a query without relevant items.

    Hand case: query 1 has R = 2, one relevant item at distance 0 and one of the two items
    tied at distance 1 relevant: (1 + 1/2) / 2; query 2 has R = 1 inside a tie of 3.

    >>> precision_at_r(np.array([[1, 2, 1], [0, 3, 1], [1, 0, 0]]), np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])).tolist()
    [0.75, 0.3333333333333333, 0.0]
    """
    n, r = np.asarray(n), np.asarray(r)
    relevant = r.sum(axis=1)
    out = np.zeros(len(relevant))
    for count in np.unique(relevant[relevant > 0]):
        rows = relevant == count
        out[rows] = m.expected_precision_at(n[rows], r[rows], int(count))
    return out


def save_evaluation_artifacts(evaluation: Evaluation, folder: str | Path) -> list[Path]:
    """Write ``per_query_ap.npy`` (expected AP per query, query order), ``per_query.npz``
    (every per-query array) and ``curves.json`` (PR curve) into ``folder``; return the paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "per_query_ap.npy", folder / "per_query.npz", folder / "curves.json"]
    np.save(paths[0], np.asarray(evaluation.per_query_ap, dtype=np.float64))
    np.savez(paths[1], **{k: np.asarray(v) for k, v in evaluation.per_query.items()})
    paths[2].write_text(json.dumps(evaluation.curves))
    return paths


def _checked_codes(codes: np.ndarray, role: str) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise BenchError(
            f"{role} codes must be a non-empty (N, K) array, got shape {codes.shape}; "
            "check that the split has images and the method outputs K bits"
        )
    if not np.all(np.abs(codes) == 1):
        raise BenchError(
            f"{role} codes must hold only -1/+1; binarise relaxed outputs with "
            "bench.evaluation.codes.sign_codes first"
        )
    return codes


def _dense_labels(query_labels, n_query: int, gallery_labels, n_gallery: int):
    ql, gl = np.asarray(query_labels).ravel(), np.asarray(gallery_labels).ravel()
    if len(ql) != n_query or len(gl) != n_gallery:
        raise BenchError(
            f"got {len(ql)} query labels for {n_query} query codes and {len(gl)} gallery "
            f"labels for {n_gallery} gallery codes; pass one label per code"
        )
    _, dense = np.unique(np.concatenate([ql, gl]), return_inverse=True)
    return dense[:n_query].astype(np.int64), dense[n_query:].astype(np.int64)
