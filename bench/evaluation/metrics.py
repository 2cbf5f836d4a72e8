"""Retrieval metrics in closed form from tie counts ``n[q, t]``, ``r[q, t]`` (no sorting).

``n[q, t]`` is the number of gallery items at Hamming distance ``t`` from query ``q``
and ``r[q, t]`` the relevant ones among them. Ranking by distance puts the ties in
increasing ``t``; inside a tie the order is unknown, so the headline numbers are
expectations under a uniformly random order inside every tie (McSherry & Najork, ECIR
2008), with best/worst-case bounds. Every function returns one value per query;
queries without any relevant item score 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

_EULER_GAMMA = 0.5772156649015329
_TABLE_TOP = 64
_HARMONIC_TABLE = np.concatenate(([0.0], np.cumsum(1.0 / np.arange(1, _TABLE_TOP + 1))))


def harmonic_diff(lo, count) -> np.ndarray:
    """``H(lo + count) - H(lo) = sum_{j=1..count} 1 / (lo + j)``, accurate for any sizes.

    Small arguments use a table; large ones the asymptotic expansion of H with the
    logarithm taken as ``log1p(count / lo)``, so no precision is lost to cancellation.

    >>> float(harmonic_diff(0, 3)), 1 + 1/2 + 1/3
    (1.8333333333333333, 1.8333333333333333)
    >>> abs(float(harmonic_diff(10**6, 1)) - 1 / (10**6 + 1)) < 1e-21
    True
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = lo + np.asarray(count, dtype=np.int64)
    lo_f, hi_f = lo.astype(np.float64), hi.astype(np.float64)
    table = _HARMONIC_TABLE[np.minimum(lo, _TABLE_TOP)]
    small = _HARMONIC_TABLE[np.minimum(hi, _TABLE_TOP)] - table
    safe_hi = np.maximum(hi_f, _TABLE_TOP)
    mixed = _harmonic_asymptotic(safe_hi) - table
    safe_lo = np.maximum(lo_f, _TABLE_TOP)
    large = np.log1p((hi_f - lo_f) / safe_lo) + _asymptotic_tail(safe_hi) - _asymptotic_tail(safe_lo)
    return np.where(hi <= _TABLE_TOP, small, np.where(lo < _TABLE_TOP, mixed, large))


def _asymptotic_tail(x: np.ndarray) -> np.ndarray:
    """``H(x) - ln x - gamma`` for x >= 64 (truncation error below 1e-16)."""
    inv2 = 1.0 / (x * x)
    return 0.5 / x - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 / 252))


def _harmonic_asymptotic(x: np.ndarray) -> np.ndarray:
    return np.log(x) + _EULER_GAMMA + _asymptotic_tail(x)


def _before(x: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum along distances: how many lie strictly closer."""
    return np.cumsum(x, axis=1) - x


def _per_relevant(total: np.ndarray, r: np.ndarray) -> np.ndarray:
    relevant = r.sum(axis=1)
    return np.where(relevant > 0, total / np.maximum(relevant, 1), 0.0)


def _expected_tie_terms(n, r, n_before, r_before, length) -> np.ndarray:
    """Expected sum of hits/rank over the relevant items among the first ``length``
    positions of each tie, under a random order inside the tie.

    Position ``j`` of a tie is relevant with probability r/n and then expects
    ``R_before + 1 + (j-1)(r-1)/(n-1)`` hits; summing ``(a + (j-1) b) / (N + j)`` over
    ``j = 1..length`` gives ``length*b + (a - b(N+1)) * (H(N+length) - H(N))``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
        a = r_before + 1.0
        sums = length * slope + (a - slope * (n_before + 1.0)) * harmonic_diff(n_before, length)
        return np.where(r > 0, r / np.maximum(n, 1) * sums, 0.0)


def expected_ap(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """AP over the whole ranking, expected under random order inside ties.

    Hand case: distances of the gallery to the query are (0: rel), (1: rel, non),
    (2: non). The tie at 1 is either [rel, non] (AP = (1 + 2/2)/2 = 1) or [non, rel]
    (AP = (1 + 2/3)/2 = 5/6), so the expectation is 11/12.

    >>> float(expected_ap(np.array([[1, 2, 1]]), np.array([[1, 1, 0]]))[0]), 11 / 12
    (0.9166666666666666, 0.9166666666666666)
    """
    n, r = np.asarray(n), np.asarray(r)
    terms = _expected_tie_terms(n, r, _before(n), _before(r), n)
    return _per_relevant(terms.sum(axis=1), r)


def best_ap(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """AP when every tie lists its relevant items first (upper bound).

    >>> best_ap(np.array([[1, 2, 1]]), np.array([[1, 1, 0]])).tolist()
    [1.0]
    """
    n, r = np.asarray(n), np.asarray(r)
    n_before, r_before = _before(n), _before(r)
    # sum_{i=1..r} (R_b + i) / (N_b + i) = r + (R_b - N_b) * (H(N_b + r) - H(N_b))
    terms = np.where(r > 0, r + (r_before - n_before) * harmonic_diff(n_before, r), 0.0)
    return _per_relevant(terms.sum(axis=1), r)


def worst_ap(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """AP when every tie lists its relevant items last (lower bound).

    >>> round(float(worst_ap(np.array([[1, 2, 1]]), np.array([[1, 1, 0]]))[0]), 12)
    0.833333333333
    """
    n, r = np.asarray(n), np.asarray(r)
    n_before, r_before = _before(n), _before(r)
    start = n_before + n - r
    terms = np.where(r > 0, r + (r_before - start) * harmonic_diff(start, r), 0.0)
    return _per_relevant(terms.sum(axis=1), r)


def stable_ap(stable_sum: np.ndarray, r: np.ndarray) -> np.ndarray:
    """AP under the deterministic order (ties by gallery index) from the counted sum of hits/rank.

    >>> stable_ap(np.array([1.5]), np.array([[1, 1, 0]])).tolist()
    [0.75]
    """
    return _per_relevant(np.asarray(stable_sum, dtype=np.float64), np.asarray(r))


def _cutoff(n: np.ndarray, k: int):
    """For a cut after position ``min(k, G)``: the boundary tie, items and relevant items
    strictly before it, and how many positions of the tie fall inside the cut."""
    cut = min(int(k), int(n[0].sum())) if len(n) else int(k)
    cum = np.cumsum(n, axis=1)
    tie = np.argmax(cum >= cut, axis=1)[:, None]
    n_before = np.take_along_axis(cum - n, tie, axis=1)[:, 0]
    inside = cut - n_before
    return cut, tie, n_before, inside


def expected_precision_at(n: np.ndarray, r: np.ndarray, k: int) -> np.ndarray:
    """Expected fraction of relevant items among the top ``min(k, G)`` (random order in ties).

    >>> expected_precision_at(np.array([[1, 2, 1]]), np.array([[1, 1, 0]]), 2).tolist()
    [0.75]
    """
    n, r = np.asarray(n), np.asarray(r)
    cut, tie, _, inside = _cutoff(n, k)
    r_before = np.take_along_axis(_before(r), tie, axis=1)[:, 0]
    n_tie = np.take_along_axis(n, tie, axis=1)[:, 0]
    r_tie = np.take_along_axis(r, tie, axis=1)[:, 0]
    hits = r_before + inside * r_tie / np.maximum(n_tie, 1)
    return hits / max(cut, 1)


def radius_metrics(n: np.ndarray, r: np.ndarray, radius: int):
    """Precision and recall of the Hamming ball of ``radius``, and which balls are empty.

    An empty ball has precision 0, a query without relevant items recall 0 (as in the
    DDH evaluation code).

    >>> p, rec, empty = radius_metrics(np.array([[1, 2, 1], [0, 0, 4]]), np.array([[1, 1, 0], [0, 0, 2]]), 1)
    >>> p.tolist(), rec.tolist(), empty.tolist()
    ([0.6666666666666666, 0.0], [1.0, 0.0], [False, True])
    """
    n, r = np.asarray(n), np.asarray(r)
    top = min(int(radius), n.shape[1] - 1)
    retrieved = n[:, : top + 1].sum(axis=1)
    hits = r[:, : top + 1].sum(axis=1)
    relevant = r.sum(axis=1)
    precision = np.where(retrieved > 0, hits / np.maximum(retrieved, 1), 0.0)
    recall = np.where(relevant > 0, hits / np.maximum(relevant, 1), 0.0)
    return precision, recall, retrieved == 0


def pr_curve(n: np.ndarray, r: np.ndarray) -> dict[str, list[float]]:
    """Exact precision-recall curve, one point per Hamming threshold ``t = 0..T-1``
    (retrieve everything within distance ``t``), macro-averaged over queries.

    ``pr_precision`` counts a query whose ball is empty as precision 0 (the released
    evaluation's rule); ``pr_precision_nonempty`` averages over the queries whose ball holds
    something (``None`` where none does) and ``pr_empty_share`` is the share of empty balls.

    >>> c = pr_curve(np.array([[1, 2, 1]]), np.array([[1, 1, 0]]))
    >>> c["pr_precision"], c["pr_recall"], c["pr_empty"]
    ([1.0, 0.6666666666666666, 0.5], [0.5, 1.0, 1.0], [0.0, 0.0, 0.0])
    >>> c = pr_curve(np.array([[1, 1], [0, 2]]), np.array([[1, 0], [0, 1]]))
    >>> c["pr_precision"], c["pr_precision_nonempty"], c["pr_empty_share"]
    ([0.5, 0.5], [1.0, 0.5], [0.5, 0.0])
    >>> pr_curve(np.array([[0, 1]]), np.array([[0, 1]]))["pr_precision_nonempty"]
    [None, 1.0]
    """
    n, r = np.asarray(n), np.asarray(r)
    retrieved, hits = np.cumsum(n, axis=1), np.cumsum(r, axis=1)
    relevant = r.sum(axis=1, keepdims=True)
    precision = np.where(retrieved > 0, hits / np.maximum(retrieved, 1), 0.0)
    recall = np.where(relevant > 0, hits / np.maximum(relevant, 1), 0.0)
    return {
        "pr_threshold": [float(t) for t in range(n.shape[1])],
        "pr_precision": precision.mean(axis=0).tolist(),
        "pr_recall": recall.mean(axis=0).tolist(),
        "pr_empty": (retrieved == 0).sum(axis=0).astype(float).tolist(),
        "pr_precision_nonempty": [None if np.isnan(v) else float(v) for v in _mean_nonempty(precision, retrieved > 0)],
        "pr_empty_share": (retrieved == 0).mean(axis=0).tolist(),
    }


def _mean_nonempty(precision: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
    """Per threshold, the mean precision over the queries whose ball is non-empty (NaN: none)."""
    count = nonempty.sum(axis=0)
    total = np.where(nonempty, precision, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


MapAtNormalisation = Literal["retrieved", "min_r_k"]


def expected_ap_at(
    n: np.ndarray, r: np.ndarray, k: int, normalisation: MapAtNormalisation = "retrieved"
) -> np.ndarray:
    """AP of the top ``min(k, G)`` positions, expected under random order inside ties.

    ``normalisation='retrieved'`` divides by the relevant items found in the top k
    (0 when none); ``'min_r_k'`` by ``min(R, k)``. The tie cut by position k holds a
    hypergeometric number X of relevant items in the cut; the expectation is taken
    exactly over X.

    Hand case: top-2 of (0: rel), (1: rel, non). X = 1 or 0 with probability 1/2:
    AP = (1 + 2/2)/2 = 1 or 1/1 = 1 ('retrieved'); 'min_r_k' gives (1 + (1/2)(2/2)) / 2.

    >>> n, r = np.array([[1, 2]]), np.array([[1, 1]])
    >>> expected_ap_at(n, r, 2).tolist(), expected_ap_at(n, r, 2, "min_r_k").tolist()
    ([1.0], [0.75])
    """
    n, r = np.asarray(n), np.asarray(r)
    cut, tie, n_before, inside = _cutoff(n, k)
    n_pos = np.arange(n.shape[1])[None, :]
    n_b, r_b = _before(n), _before(r)
    full = np.where(n_pos < tie, _expected_tie_terms(n, r, n_b, r_b, n), 0.0).sum(axis=1)
    r_before = np.take_along_axis(r_b, tie, axis=1)[:, 0]
    n_tie = np.take_along_axis(n, tie, axis=1)[:, 0]
    r_tie = np.take_along_axis(r, tie, axis=1)[:, 0]
    relevant = r.sum(axis=1)
    # Given X relevant among the first m positions of the boundary tie, the tie adds
    # B(X) = X * a*dH / m + X(X-1) / (m(m-1)) * (m - (N_b + 1) dH).
    a, dh = r_before + 1.0, harmonic_diff(n_before, inside)
    linear = a * dh / np.maximum(inside, 1)
    quad = np.where(inside > 1, (inside - (n_before + 1.0) * dh), 0.0) / np.maximum(
        inside * (inside - 1.0), 1.0
    )
    if normalisation == "min_r_k":
        mean_x = inside * r_tie / np.maximum(n_tie, 1)
        mean_xx = np.where(
            n_tie > 1,
            inside * (inside - 1.0) * r_tie * (r_tie - 1.0) / np.maximum(n_tie * (n_tie - 1.0), 1),
            0.0,
        )
        total = full + linear * mean_x + quad * mean_xx
        return np.where(relevant > 0, total / np.maximum(np.minimum(relevant, cut), 1), 0.0)
    if normalisation != "retrieved":
        raise ValueError(f"unknown mAP@K normalisation {normalisation!r}")
    out = np.zeros(len(n))
    for q in np.flatnonzero(relevant > 0):
        x, p = _hypergeometric(int(n_tie[q]), int(r_tie[q]), int(inside[q]))
        found = r_before[q] + x
        gain = full[q] + linear[q] * x + quad[q] * x * (x - 1.0)
        out[q] = float(np.sum(p * np.where(found > 0, gain / np.maximum(found, 1), 0.0)))
    return out


def _hypergeometric(population: int, successes: int, draws: int):
    """Support and pmf of successes among ``draws`` taken from ``population`` (log-space
    recurrence, normalised at the end).

    >>> x, p = _hypergeometric(4, 2, 2); x.tolist(), [round(float(v), 12) for v in p]
    ([0, 1, 2], [0.166666666667, 0.666666666667, 0.166666666667])
    """
    lo, hi = max(0, draws - (population - successes)), min(draws, successes)
    x = np.arange(lo, hi + 1)
    step = x[:-1].astype(np.float64)
    log_ratio = np.log((successes - step) * (draws - step)) - np.log(
        (step + 1) * (population - successes - draws + step + 1)
    )
    log_p = np.concatenate(([0.0], np.cumsum(log_ratio)))
    p = np.exp(log_p - log_p.max())
    return x, p / p.sum()
