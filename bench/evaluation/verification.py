"""Face verification and identification metrics from the same tie counts as ``map``.

Summed over queries, ``r[q, t]`` is the histogram of genuine (same identity) and
``n[q, t] - r[q, t]`` the histogram of impostor query-gallery pairs over Hamming distance
``t``, so verification needs no pass over the gallery of its own.

Verification accepts a pair when its distance is ``<= t`` for an integer threshold ``t``
(``t = -1`` accepts nothing). Every pair at the threshold distance counts as accepted: a
threshold never splits a tie. TAR at FAR ``x`` is the TAR of the largest threshold whose
FAR does not exceed ``x`` (0 when even ``t = 0`` exceeds it). Joining the ROC points by
straight lines is exactly accepting a random fraction of the tie at the next distance,
the same random order inside ties that ``map`` takes the expectation over; the EER and
the ROC AUC are read off that polyline (the AUC counts a genuine-impostor tie as 1/2).
Identification (CMC) rank-k is the probability that the top k of the ranking hold a
relevant item, expected under a random order inside ties, as for ``map``.
"""

from __future__ import annotations

import numpy as np


def pair_histograms(n: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor pair counts per Hamming distance, summed over queries.

    >>> g, i = pair_histograms(np.array([[1, 2, 1], [0, 3, 1]]), np.array([[1, 1, 0], [0, 1, 1]]))
    >>> g.tolist(), i.tolist()
    ([1, 2, 1], [0, 3, 1])
    """
    n, r = np.asarray(n, dtype=np.int64), np.asarray(r, dtype=np.int64)
    return r.sum(axis=0), (n - r).sum(axis=0)


def roc_points(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, list[float]]:
    """ROC over integer thresholds ``t = -1 .. T-1``: FAR and TAR of accepting distance ``<= t``.

    >>> roc_points(np.array([2, 1, 1]), np.array([0, 1, 3]))
    {'roc_threshold': [-1.0, 0.0, 1.0, 2.0], 'roc_far': [0.0, 0.0, 0.25, 1.0], 'roc_tar': [0.0, 0.5, 0.75, 1.0]}
    """
    far, tar = _rates(genuine, impostor)
    return {"roc_threshold": [float(t) for t in range(-1, len(genuine))],
            "roc_far": far.tolist(), "roc_tar": tar.tolist()}


def _rates(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.concatenate(([0], np.cumsum(genuine))).astype(np.float64)
    i = np.concatenate(([0], np.cumsum(impostor))).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return i / i[-1], g / g[-1]  # NaN without impostor (or genuine) pairs


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    """TAR at the largest integer threshold whose FAR is ``<= far`` (pairs at the
    threshold accepted); NaN without genuine or impostor pairs.

    >>> g, i = np.array([2, 1, 1]), np.array([0, 1, 3])
    >>> tar_at_far(g, i, 0.1), tar_at_far(g, i, 0.25), tar_at_far(np.array([1]), np.array([1]), 0.5)
    (0.5, 0.75, 0.0)
    """
    rates_far, rates_tar = _rates(genuine, impostor)
    if np.isnan(rates_far[-1]) or np.isnan(rates_tar[-1]):
        return float("nan")
    allowed = np.flatnonzero(rates_far <= far + 1e-15)  # t = -1 (FAR 0) always qualifies
    return float(rates_tar[allowed[-1]])


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The error rate where FAR equals FRR = 1 - TAR on the ROC polyline (ties at a
    threshold accepted in a random fraction); NaN without genuine or impostor pairs.

    Hand case: ROC points (0, 0), (0, 1/2), (1/4, 3/4), (1, 1). On the segment from
    (0, 1/2) to (1/4, 3/4), FAR = s/4 and FRR = 1/2 - s/4 meet at s = 1: EER = 1/4.

    >>> equal_error_rate(np.array([2, 1, 1]), np.array([0, 1, 3]))
    0.25
    >>> equal_error_rate(np.array([1, 0]), np.array([0, 1]))  # fully separated
    0.0
    """
    far, tar = _rates(genuine, impostor)
    if np.isnan(far[-1]) or np.isnan(tar[-1]):
        return float("nan")
    gap = far - (1.0 - tar)  # rises from -1 at t = -1 to +1 at the last threshold
    j = int(np.argmax(gap >= 0))  # first point at or past the crossing (j >= 1)
    if gap[j] == 0:
        return float(far[j])
    s = -gap[j - 1] / (gap[j] - gap[j - 1])  # fraction of the tie at distance j - 1 accepted
    return float(far[j - 1] + s * (far[j] - far[j - 1]))


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC polyline: P(genuine closer than impostor) + P(equal) / 2.

    >>> roc_auc(np.array([2, 1, 1]), np.array([0, 1, 3]))
    0.8125
    """
    g, i = np.asarray(genuine, np.float64), np.asarray(impostor, np.float64)
    if g.sum() == 0 or i.sum() == 0:
        return float("nan")
    impostor_farther = i.sum() - np.cumsum(i)  # impostor pairs strictly farther than t
    return float((g * (impostor_farther + 0.5 * i)).sum() / (g.sum() * i.sum()))


def expected_rank_hit(n: np.ndarray, r: np.ndarray, k: int) -> np.ndarray:
    """Per query: the probability that the top ``k`` of the ranking hold a relevant item
    (CMC at rank ``k``) under a random order inside ties; 0 without relevant items.

    The first tie holding a relevant item has ``m`` positions inside the top k; it misses
    all ``r`` relevant of its ``n`` items with probability ``C(n - r, m) / C(n, m)``.

    >>> n, r = np.array([[1, 3, 1], [2, 2, 0]]), np.array([[0, 1, 0], [0, 0, 0]])
    >>> expected_rank_hit(n, r, 1).tolist(), expected_rank_hit(n, r, 2).round(12).tolist()
    ([0.0, 0.0], [0.333333333333, 0.0])
    """
    n, r = np.asarray(n, dtype=np.int64), np.asarray(r, dtype=np.int64)
    has = r.sum(axis=1) > 0
    first = np.argmax(r > 0, axis=1)[:, None]
    before = np.take_along_axis(np.cumsum(n, axis=1) - n, first, axis=1)[:, 0]
    n_tie = np.take_along_axis(n, first, axis=1)[:, 0]
    r_tie = np.take_along_axis(r, first, axis=1)[:, 0]
    inside = np.clip(k - before, 0, n_tie)
    miss = np.ones(len(n))
    for j in range(int(inside.max(initial=0))):  # prod_{j < m} (n - r - j) / (n - j)
        step = j < inside
        miss = np.where(step, miss * np.maximum(n_tie - r_tie - j, 0) / np.maximum(n_tie - j, 1), miss)
    return np.where(has & (inside > 0), 1.0 - miss, 0.0)


FAR_TARGETS = {"tar_at_far_1e-3": 1e-3, "tar_at_far_1e-2": 1e-2}
RANKS = (1, 5)


def verification_metrics(n: np.ndarray, r: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, list[float]]]:
    """Every verification and identification metric of the tie counts: the averaged
    metrics, the per-query CMC hits (``rank1``, ``rank5``) and the ROC points.

    >>> metrics, per_query, roc = verification_metrics(np.array([[1, 2, 1]]), np.array([[1, 1, 0]]))
    >>> metrics["eer"], metrics["rank1"], per_query["rank5"].tolist(), roc["roc_tar"]
    (0.25, 1.0, [1.0], [0.0, 0.5, 1.0, 1.0])
    """
    genuine, impostor = pair_histograms(n, r)
    metrics = {name: tar_at_far(genuine, impostor, far) for name, far in FAR_TARGETS.items()}
    metrics["eer"] = equal_error_rate(genuine, impostor)
    metrics["roc_auc"] = roc_auc(genuine, impostor)
    per_query = {f"rank{k}": expected_rank_hit(n, r, k) for k in RANKS}
    metrics.update({name: float(values.mean()) for name, values in per_query.items()})
    return metrics, per_query, roc_points(genuine, impostor)
