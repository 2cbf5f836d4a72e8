"""Verification (ROC, TAR at FAR, EER, ROC AUC) and identification (CMC rank-k) metrics of
the engine against brute force over every query-gallery pair of random codes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.evaluation import evaluate
from bench.evaluation import verification as v


def random_case(seed: int, queries: int = 9, gallery: int = 40, bits: int = 6, ids: int = 5):
    rng = np.random.default_rng(seed)
    q = rng.choice([-1, 1], size=(queries, bits)).astype(np.int8)
    g = rng.choice([-1, 1], size=(gallery, bits)).astype(np.int8)
    return q, rng.integers(0, ids, queries), g, rng.integers(0, ids, gallery)


def pairs(q, ql, g, gl):
    """Hamming distance and genuine flag of every query-gallery pair."""
    dist = (q[:, None, :] != g[None, :, :]).sum(axis=2)
    return dist, ql[:, None] == gl[None, :]


def brute_rates(dist, genuine, t, fraction=0.0):
    """(FAR, TAR) accepting pairs closer than ``t`` and a ``fraction`` of those at ``t``."""
    d_gen, d_imp = dist[genuine], dist[~genuine]
    far = np.mean(d_imp < t) + fraction * np.mean(d_imp == t)
    tar = np.mean(d_gen < t) + fraction * np.mean(d_gen == t)
    return far, tar


def brute_tar_at_far(dist, genuine, target):
    best = 0.0
    for t in range(dist.max() + 1):  # accept d <= t
        far, tar = brute_rates(dist, genuine, t + 1)
        if far <= target:
            best = tar
    return best


def brute_eer(dist, genuine):
    """Solve FAR(t, a) = 1 - TAR(t, a), linear in the accepted fraction a of the tie at t."""
    for t in range(dist.max() + 1):
        f0, t0 = brute_rates(dist, genuine, t, 0.0)
        f1, t1 = brute_rates(dist, genuine, t, 1.0)
        g0, g1 = f0 - (1 - t0), f1 - (1 - t1)
        if g0 <= 0 <= g1:
            a = 0.0 if g1 == g0 else -g0 / (g1 - g0)
            return f0 + a * (f1 - f0)
    raise AssertionError("no crossing")


def brute_auc(dist, genuine):
    d_gen, d_imp = dist[genuine][:, None], dist[~genuine][None, :]
    return float(np.mean((d_gen < d_imp) + 0.5 * (d_gen == d_imp)))


def brute_rank_hit(dist_row, relevant_row, k):
    """CMC hit at rank k, averaged over every order of the gallery sorted by distance."""
    if not relevant_row.any():
        return 0.0
    groups = [np.flatnonzero(dist_row == t) for t in np.unique(dist_row)]
    hits = total = 0
    for orders in itertools.product(*(itertools.permutations(gr) for gr in groups)):
        ranking = np.concatenate([np.asarray(o, dtype=np.int64) for o in orders])
        hits += bool(relevant_row[ranking[:k]].any())
        total += 1
    return hits / total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_verification_metrics_equal_brute_force_over_all_pairs(seed):
    q, ql, g, gl = random_case(seed)
    e = evaluate(q, ql, g, gl, device="cpu", plugin_metrics={})
    dist, genuine = pairs(q, ql, g, gl)
    for name, target in v.FAR_TARGETS.items():
        assert abs(e.metrics[name] - brute_tar_at_far(dist, genuine, target)) < 1e-12
    assert abs(e.metrics["eer"] - brute_eer(dist, genuine)) < 1e-12
    assert abs(e.metrics["roc_auc"] - brute_auc(dist, genuine)) < 1e-12
    for t, far, tar in zip(e.curves["roc_threshold"], e.curves["roc_far"], e.curves["roc_tar"], strict=True):
        bf, bt = brute_rates(dist, genuine, int(t) + 1)
        assert abs(far - bf) < 1e-12 and abs(tar - bt) < 1e-12


def test_tar_at_looser_far_and_pairs_at_the_threshold_count_as_accepted():
    q, ql, g, gl = random_case(4, queries=12, gallery=60, bits=5)
    dist, genuine = pairs(q, ql, g, gl)
    gen, imp = np.bincount(dist[genuine], minlength=6), np.bincount(dist[~genuine], minlength=6)
    for target in (0.05, 0.2, 0.5):
        assert abs(v.tar_at_far(gen, imp, target) - brute_tar_at_far(dist, genuine, target)) < 1e-12
    # 1 of 100 impostors ties with half the genuine pairs at distance 0: FAR(0) = 1e-2 is
    # allowed, so the whole tie is accepted (TAR 0.5); at 1e-3 no threshold qualifies
    gen, imp = np.array([1, 1]), np.array([1, 99])
    assert v.tar_at_far(gen, imp, 1e-2) == 0.5 and v.tar_at_far(gen, imp, 1e-3) == 0.0


@pytest.mark.parametrize("seed", [0, 3])
def test_rank_k_equals_the_average_over_every_tie_order(seed):
    q, ql, g, gl = random_case(seed, queries=6, gallery=7, bits=3, ids=3)
    e = evaluate(q, ql, g, gl, device="cpu", plugin_metrics={})
    dist, genuine = pairs(q, ql, g, gl)
    for k in (1, 5):
        brute = [brute_rank_hit(dist[i], genuine[i], k) for i in range(len(q))]
        assert np.max(np.abs(e.per_query[f"rank{k}"] - brute)) < 1e-12
        assert abs(e.metrics[f"rank{k}"] - np.mean(brute)) < 1e-12
    assert 0 < np.mean(brute) < 1 and not np.all(np.isin(brute, (0.0, 1.0)))  # ties decide some queries
