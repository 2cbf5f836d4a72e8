"""The evaluation engine against an independent brute-force reference written here.

The reference uses neither bench.evaluation.hamming nor bench.evaluation: distances are counted
position by position, rankings are built explicitly, expectations come from enumerating
every tie order (tiny cases), every placement of relevant items inside each tie (exact
fractions, larger cases) or many random tie orders (Monte Carlo).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.config.protocol import EvaluationSpec
from bench.evaluation import evaluate
from bench.evaluation.codes import pack_codes
from bench.evaluation.hamming import count_ties
from bench.evaluation.hamming_torch import count_ties_torch


def distances(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Number of differing positions, by explicit comparison."""
    return (query[:, None, :] != gallery[None, :, :]).sum(axis=2)


def ap_of_ranking(relevant_in_order) -> Fraction:
    """AP of one ranking: mean over relevant positions of hits-so-far / position."""
    hits, total = 0, Fraction(0)
    for position, rel in enumerate(relevant_in_order, start=1):
        if rel:
            hits += 1
            total += Fraction(hits, position)
    return total / hits if hits else Fraction(0)


def ap_at_ranking(relevant_in_order, k: int, normalisation: str, n_relevant: int) -> Fraction:
    top = list(relevant_in_order)[:k]
    hits, total = 0, Fraction(0)
    for position, rel in enumerate(top, start=1):
        if rel:
            hits += 1
            total += Fraction(hits, position)
    denominator = hits if normalisation == "retrieved" else min(n_relevant, len(top))
    return total / denominator if denominator else Fraction(0)


def ties(dist_row: np.ndarray) -> list[list[int]]:
    """Gallery indices grouped by distance, increasing distance, index order inside."""
    return [list(np.flatnonzero(dist_row == d)) for d in sorted(set(dist_row.tolist()))]


def all_orders(dist_row: np.ndarray):
    """Every ranking consistent with the distances (all permutations inside every tie)."""
    groups = ties(dist_row)
    for choice in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield [i for group in choice for i in group]


def stable_order(dist_row: np.ndarray) -> list[int]:
    return sorted(range(len(dist_row)), key=lambda i: (dist_row[i], i))


def expected_ap_by_patterns(dist_row: np.ndarray, rel_row: np.ndarray) -> Fraction:
    """E[AP] by enumerating, tie by tie, every placement of its relevant items (each
    equally likely under a random order); tie contributions add up."""
    n_rel = int(rel_row.sum())
    if n_rel == 0:
        return Fraction(0)
    total, n_before, r_before = Fraction(0), 0, 0
    for group in ties(dist_row):
        size, rel = len(group), int(rel_row[group].sum())
        if rel:
            acc = Fraction(0)
            for places in itertools.combinations(range(1, size + 1), rel):
                acc += sum(Fraction(r_before + i + 1, n_before + p) for i, p in enumerate(places))
            total += acc / comb(size, rel)
        n_before, r_before = n_before + size, r_before + rel
    return total / n_rel


def brute_report(query, query_labels, gallery, gallery_labels, k_list, radius, map_at, enumerate_all):
    """Every metric by brute force, per query (Fractions)."""
    dist = distances(query, gallery)
    rows = []
    for qi in range(len(query)):
        rel = (gallery_labels == query_labels[qi]).astype(int)
        n_rel = int(rel.sum())
        row = {"stable": ap_of_ranking(rel[stable_order(dist[qi])]),
               "expected": expected_ap_by_patterns(dist[qi], rel)}
        if enumerate_all:
            orders = [rel[o] for o in all_orders(dist[qi])]
            aps = [ap_of_ranking(o) for o in orders]
            row.update(all_mean=sum(aps) / len(aps), best=max(aps), worst=min(aps))
            for k in k_list:
                cut = min(k, len(rel))
                row[f"p@{k}"] = sum(Fraction(int(o[:cut].sum()), cut) for o in orders) / len(orders)
            for k in map_at:
                for norm in ("retrieved", "min_r_k"):
                    vals = [ap_at_ranking(o, k, norm, n_rel) for o in orders]
                    row[f"ap@{k}:{norm}"] = sum(vals) / len(vals)
        inside = dist[qi] <= radius
        retrieved, hits = int(inside.sum()), int(rel[inside].sum())
        row["p_r"] = Fraction(hits, retrieved) if retrieved else Fraction(0)
        row["rec_r"] = Fraction(hits, n_rel) if n_rel else Fraction(0)
        row["empty"] = retrieved == 0
        rows.append(row)
    return rows


def random_case(rng, n_query, n_gallery, bits, classes):
    query = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_query, bits))
    gallery = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_gallery, bits))
    # classes + 1 labels for queries: some queries have no relevant item at all
    return query, rng.integers(0, classes + 1, n_query), gallery, rng.integers(0, classes, n_gallery)


@pytest.mark.parametrize("seed", range(6))
def test_tiny_cases_against_all_tie_permutations(seed):
    rng = np.random.default_rng(seed)
    bits = 1 + seed % 3
    query, ql, gallery, gl = random_case(rng, 4, 7, bits, 2)
    spec = EvaluationSpec(precision_at=[1, 3, 50], radius=1, map_at=[2, 4])
    ours = {norm: evaluate(query, ql, gallery, gl, spec.model_copy(update={"map_at_normalisation": norm}),
                           device="cpu") for norm in ("retrieved", "min_r_k")}
    ev = ours["retrieved"]
    ref = brute_report(query, ql, gallery, gl, [1, 3, 50], 1, [2, 4], enumerate_all=True)
    for qi, row in enumerate(ref):
        assert row["all_mean"] == row["expected"]  # the two references agree exactly
        assert ev.per_query["ap"][qi] == pytest.approx(float(row["all_mean"]), abs=1e-12)
        assert ev.per_query["ap_best"][qi] == pytest.approx(float(row["best"]), abs=1e-12)
        assert ev.per_query["ap_worst"][qi] == pytest.approx(float(row["worst"]), abs=1e-12)
        assert ev.per_query["ap_stable"][qi] == pytest.approx(float(row["stable"]), abs=1e-12)
        for k in (2, 4):
            for norm in ("retrieved", "min_r_k"):
                got = ours[norm].per_query[f"ap_at_{k}"][qi]
                assert got == pytest.approx(float(row[f"ap@{k}:{norm}"]), abs=1e-12)
    for k in (1, 3, 50):
        assert ev.metrics[f"precision_at_{k}"] == pytest.approx(
            float(sum(r[f"p@{k}"] for r in ref) / len(ref)), abs=1e-12)
    assert ev.metrics["map"] == pytest.approx(float(sum(r["all_mean"] for r in ref) / len(ref)), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_larger_cases_against_exact_placements(seed):
    rng = np.random.default_rng(100 + seed)
    query, ql, gallery, gl = random_case(rng, 6, 40, 5, 3)
    ev = evaluate(query, ql, gallery, gl, EvaluationSpec(radius=2), device="cpu")
    ref = brute_report(query, ql, gallery, gl, [], 2, [], enumerate_all=False)
    for qi, row in enumerate(ref):
        assert ev.per_query["ap"][qi] == pytest.approx(float(row["expected"]), abs=1e-9)
        assert ev.per_query["ap_stable"][qi] == pytest.approx(float(row["stable"]), abs=1e-9)
        # radius metrics are ratios of counts: exact up to float rounding of one division
        assert ev.per_query["ap_worst"][qi] <= ev.per_query["ap"][qi] <= ev.per_query["ap_best"][qi]
    assert ev.metrics["precision_r2"] == pytest.approx(float(sum(r["p_r"] for r in ref) / len(ref)), abs=1e-15)
    assert ev.metrics["recall_r2"] == pytest.approx(float(sum(r["rec_r"] for r in ref) / len(ref)), abs=1e-15)
    assert ev.metrics["empty_r2"] == sum(r["empty"] for r in ref)


def test_expected_ap_matches_many_random_tie_orders():
    rng = np.random.default_rng(7)
    query, ql, gallery, gl = random_case(rng, 3, 300, 4, 3)
    ql = np.array([0, 1, 2])
    ev = evaluate(query, ql, gallery, gl, device="cpu")
    dist = distances(query, gallery)
    for qi in range(3):
        rel = gl == ql[qi]
        samples = []
        for _ in range(400):
            order = np.lexsort((rng.random(len(rel)), dist[qi]))  # random order inside ties
            ranked = rel[order]
            hits = np.cumsum(ranked)[ranked]
            samples.append(float(np.mean(hits / (np.flatnonzero(ranked) + 1))))
        mean, sem = np.mean(samples), np.std(samples) / np.sqrt(len(samples))
        assert abs(ev.per_query["ap"][qi] - mean) < 5 * sem + 1e-12


def test_pr_curve_is_exact():
    rng = np.random.default_rng(3)
    query, ql, gallery, gl = random_case(rng, 5, 30, 6, 3)
    curve = evaluate(query, ql, gallery, gl, device="cpu").curves
    dist = distances(query, gallery)
    for t in range(7):
        precisions, recalls = [], []
        for qi in range(5):
            rel = gl == ql[qi]
            inside = dist[qi] <= t
            hits = int(rel[inside].sum())
            precisions.append(Fraction(hits, int(inside.sum())) if inside.any() else Fraction(0))
            recalls.append(Fraction(hits, int(rel.sum())) if rel.any() else Fraction(0))
        assert curve["pr_threshold"][t] == t
        assert curve["pr_precision"][t] == pytest.approx(float(sum(precisions) / 5), abs=1e-15)
        assert curve["pr_recall"][t] == pytest.approx(float(sum(recalls) / 5), abs=1e-15)


codes_strategy = st.integers(1, 64).flatmap(
    lambda bits: st.tuples(
        st.just(bits),
        st.integers(1, 5),
        st.integers(1, 12),
        st.integers(1, 4),
        st.integers(0, 2**32 - 1),
        st.booleans(),
    )
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codes_strategy)
def test_property_counts_and_bounds(case):
    bits, n_query, n_gallery, classes, seed, all_equal = case
    rng = np.random.default_rng(seed)
    query, ql, gallery, gl = random_case(rng, n_query, n_gallery, bits, classes)
    if all_equal:
        gallery[:] = query[0]
    counts = count_ties(pack_codes(query), ql, pack_codes(gallery), gl, bits)
    dist = distances(query, gallery)
    for qi in range(n_query):
        rel = gl == ql[qi]
        assert counts.n[qi].tolist() == np.bincount(dist[qi], minlength=bits + 1).tolist()
        assert counts.r[qi].tolist() == np.bincount(dist[qi][rel], minlength=bits + 1).tolist()
    ev = evaluate(query, ql, gallery, gl, device="cpu", plugin_metrics={})
    ref = brute_report(query, ql, gallery, gl, [], 2, [], enumerate_all=False)
    for qi, row in enumerate(ref):
        ap, best, worst = (ev.per_query[k][qi] for k in ("ap", "ap_best", "ap_worst"))
        assert ap == pytest.approx(float(row["expected"]), abs=1e-9)
        assert ev.per_query["ap_stable"][qi] == pytest.approx(float(row["stable"]), abs=1e-9)
        assert worst - 1e-12 <= ev.per_query["ap_stable"][qi] <= best + 1e-12
        assert worst - 1e-12 <= ap <= best + 1e-12
        if not (gl == ql[qi]).any():
            assert best == 0.0 and ap == 0.0
    assert ev.metrics["queries_without_relevant"] == sum(not (gl == q).any() for q in ql)
    if all_equal:  # one tie holding the whole gallery for query 0: best case puts all relevant first
        assert ev.per_query["ap_best"][0] == (1.0 if (gl == ql[0]).any() else 0.0)


@pytest.mark.parametrize("bits", [3, 65, 130])
def test_torch_path_matches_numba_kernel(bits):
    rng = np.random.default_rng(bits)
    query, ql, gallery, gl = random_case(rng, 9, 50, bits, 3)
    args = (pack_codes(query), ql, pack_codes(gallery), gl, bits)
    cpu = count_ties(*args)
    # tiny chunks force several query and gallery chunks through both torch passes
    tor = count_ties_torch(*args, device="cpu", chunk_elements=64)
    assert (cpu.n == tor.n).all() and (cpu.r == tor.r).all()
    np.testing.assert_allclose(tor.stable, cpu.stable, rtol=0, atol=1e-9)
    dist = distances(query, gallery)
    for qi in range(9):
        rel = (gl == ql[qi])[stable_order(dist[qi])]
        assert cpu.stable[qi] / max(rel.sum(), 1) == pytest.approx(float(ap_of_ranking(rel)), abs=1e-12)
