"""The real-valued (cosine) evaluation of the float top line against brute force: every order of
the gallery consistent with the distances is enumerated (ties included), and each metric is
averaged over them, or taken at its best / worst / gallery-index order; verification metrics
against a scan over every threshold and every genuine-impostor pair."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.config.protocol import EvaluationSpec
from bench.evaluation.real_valued import cosine_distances, evaluate_embeddings


def orders(distances: np.ndarray) -> list[tuple[int, ...]]:
    """Every permutation of the gallery sorted by distance (all orders inside ties)."""
    return [p for p in itertools.permutations(range(len(distances)))
            if all(distances[p[i]] <= distances[p[i + 1]] for i in range(len(p) - 1))]


def ap(relevant: list[bool]) -> float:
    hits, total = 0, 0.0
    for rank, rel in enumerate(relevant, 1):
        if rel:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def brute(query, ql, gallery, gl, k):
    """Per-query expected, best, worst, stable AP, precision at k and rank-1 hit."""
    d = 1 - (query / np.linalg.norm(query, axis=1, keepdims=True)) @ (gallery / np.linalg.norm(gallery, axis=1, keepdims=True)).T
    out = {name: [] for name in ("ap", "ap_best", "ap_worst", "ap_stable", "p@k", "rank1")}
    for qi in range(len(query)):
        rows = d[qi].round(12)  # the evaluation's float64 ties are exact; rounding only guards this reference
        perms = orders(rows)
        rel = [[gl[j] == ql[qi] for j in p] for p in perms]
        aps = [ap(r) for r in rel]
        out["ap"].append(np.mean(aps))
        out["ap_best"].append(max(aps))
        out["ap_worst"].append(min(aps))
        out["ap_stable"].append(ap([gl[j] == ql[qi] for j in sorted(range(len(rows)), key=lambda j: (rows[j], j))]))
        out["p@k"].append(np.mean([sum(r[:k]) / k for r in rel]))
        out["rank1"].append(np.mean([float(r[0]) for r in rel]))
    return {name: float(np.mean(v)) for name, v in out.items()}, d


@pytest.mark.parametrize("seed", range(6))
def test_ranking_metrics_equal_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((4, 5))  # gallery items repeat these: exact ties
    gallery = atoms[rng.integers(0, 4, 7)] * rng.choice([1.0, 2.0], (7, 1))  # a scale leaves cosine unchanged
    gl = rng.integers(0, 3, 7)
    query = rng.standard_normal((3, 5))
    ql = np.array([0, 1, 2])
    spec = EvaluationSpec(precision_at=[3])
    e = evaluate_embeddings(query, ql, gallery, gl, spec)
    ref, _ = brute(query, ql, gallery, gl, 3)
    for name, key in (("map", "ap"), ("map_best", "ap_best"), ("map_worst", "ap_worst"),
                      ("map_stable", "ap_stable"), ("precision_at_3", "p@k"), ("rank1", "rank1")):
        assert e.metrics[name] == pytest.approx(ref[key], abs=1e-12), name
    assert e.metrics["map_best"] >= e.metrics["map"] >= e.metrics["map_worst"]


def test_the_ties_matter_in_the_reference():
    """Guard: in these cases the bounds differ, so a tie-blind implementation would fail."""
    rng = np.random.default_rng(1)
    atoms = rng.standard_normal((4, 5))
    gallery, gl = atoms[rng.integers(0, 4, 7)], rng.integers(0, 3, 7)
    e = evaluate_embeddings(rng.standard_normal((3, 5)), np.array([0, 1, 2]), gallery, gl)
    assert e.metrics["map_best"] > e.metrics["map_worst"]


@pytest.mark.parametrize("seed", range(4))
def test_verification_metrics_equal_a_scan_of_thresholds_and_pairs(seed):
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((5, 4))
    gallery, gl = atoms[rng.integers(0, 5, 9)], rng.integers(0, 3, 9)
    query, ql = atoms[rng.integers(0, 5, 4)], rng.integers(0, 3, 4)
    e = evaluate_embeddings(query, ql, gallery, gl)
    d = cosine_distances(query, gallery).ravel()
    rel = (gl[None, :] == ql[:, None]).ravel()
    gen, imp = d[rel], d[~rel]
    auc = np.mean([(g < i) + 0.5 * (g == i) for g in gen for i in imp])
    assert e.metrics["roc_auc"] == pytest.approx(auc, abs=1e-12)
    for name, far in (("tar_at_far_1e-2", 1e-2), ("tar_at_far_1e-3", 1e-3)):
        thresholds = [-1.0, *np.unique(d)]
        ok = [t for t in thresholds if np.mean(imp <= t) <= far + 1e-15]
        assert e.metrics[name] == pytest.approx(np.mean(gen <= max(ok)), abs=1e-12)


def test_curves_and_missing_hamming_metrics():
    rng = np.random.default_rng(0)
    gallery, gl = rng.standard_normal((40, 8)), np.repeat(np.arange(8), 5)
    e = evaluate_embeddings(rng.standard_normal((6, 8)), np.arange(6), gallery, gl)
    assert not any(k.startswith(("precision_r", "recall_r", "empty_r")) for k in e.metrics)
    assert e.curves["pr_recall"][-1] == pytest.approx(1.0) and e.curves["roc_tar"][-1] == 1.0
    assert len(e.curves["pr_threshold"]) == len(e.curves["pr_precision"])
    assert e.per_query_ap.shape == (6,)


def test_bad_input_is_one_line():
    from bench.api.errors import BenchError

    with pytest.raises(BenchError, match="NaN"):
        evaluate_embeddings(np.array([[np.nan, 1.0]]), [0], np.ones((2, 2)), [0, 1])
    with pytest.raises(BenchError, match="dimensions"):
        evaluate_embeddings(np.ones((1, 3)), [0], np.ones((2, 2)), [0, 1])
