"""The released code's ranking on the legacy distance: ``precision_at_50_legacy`` (the top 50,
ties in gallery order, as ``map_legacy``) and the released tie order itself, the opt-in
``map_legacy_argsort`` and ``precision_at_50_legacy_argsort``.

The released ``cat_apcal`` ranks the gallery with ``np.argsort(hammTrainTest, axis=0)``:
numpy's default sort (introsort, not stable) on the uint16 legacy distance matrix, one
column per query, then AP = (1/x) * sum over relevant ranks j of (hits up to j)/j, summed
in rank order, and P@50 = (relevant items among the first 50)/50. The ``_argsort``
metrics repeat exactly that: the same uint16 distances of one query, the same default
``np.argsort`` (a contiguous copy of one column is what numpy sorts for ``axis=0``), the
same sums in the same order (``np.cumsum`` adds sequentially), so they equal the released
numbers bit for bit on the same numpy and CPU (the order inside ties depends on numpy's
sort implementation, in the released code too). They cost a sort per query, so they are
opt-in (``evaluation.opt_in_metrics``). With fewer than 50 gallery items the released code
fails; here every item counts and the divisor stays 50.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit, prange

from bench.evaluation.hamming import popcount
from bench.evaluation.plugin_metrics import CodeSets
from plugins.metrics.legacy_ddh import (
    legacy_compactbit_bytes,
    legacy_max_distance,
    legacy_words,
    per_code_sets,
)

TOP_K = 50  # TOP_K in DDH.py and DCBH's RetrievalTest.search
_BLOCK = 64  # queries per block of distances (64 x 100k gallery x uint16 = 12.8 MB)


def legacy_distances(query_words: np.ndarray, gallery_words: np.ndarray) -> np.ndarray:
    """(Q, G) uint16 legacy Hamming distances (the dtype of the released ``hammingDist``).

    >>> q = legacy_words(legacy_compactbit_bytes(np.array([[1] * 8])))
    >>> g = legacy_words(legacy_compactbit_bytes(np.array([[-1] * 8, [1] * 6 + [-1, -1]])))
    >>> legacy_distances(q, g).tolist()   # the top bit of a full word is ignored
    [[7, 1]]
    """
    out = np.empty((len(query_words), len(gallery_words)), dtype=np.uint16)
    _distance_kernel(query_words, gallery_words, out)
    return out


def legacy_precision_at_50(codes: CodeSets) -> np.ndarray:
    """Per-query precision of the top 50 by legacy distance, ties in gallery order (as
    ``map_legacy``); the divisor is 50, as in the released ``cat_apcal``."""
    hits = np.zeros(len(codes.query), dtype=np.int64)
    _stable_top_k_kernel(
        legacy_words(legacy_compactbit_bytes(codes.query)), np.ascontiguousarray(codes.query_labels, np.int64),
        legacy_words(legacy_compactbit_bytes(codes.gallery)), np.ascontiguousarray(codes.gallery_labels, np.int64),
        TOP_K, legacy_max_distance(codes.bits) + 1, hits,
    )
    return hits / TOP_K


@per_code_sets
def released_ranking_scores(codes: CodeSets) -> tuple[np.ndarray, np.ndarray]:
    """Per-query AP and P@50 under the released tie order (``np.argsort`` default kind on
    the uint16 legacy distances), summed as the released ``cat_apcal`` sums them."""
    query = legacy_words(legacy_compactbit_bytes(codes.query))
    gallery = legacy_words(legacy_compactbit_bytes(codes.gallery))
    ap = np.zeros(len(query), dtype=np.float64)
    top = np.zeros(len(query), dtype=np.float64)

    def block(start: int) -> None:
        distances = legacy_distances(query[start : start + _BLOCK], gallery)
        for offset, row in enumerate(distances):
            qi = start + offset
            relevant = codes.gallery_labels[np.argsort(row)] == codes.query_labels[qi]
            ranks = np.flatnonzero(relevant)
            if len(ranks):  # cat_apcal: p += x / (j + 1) over relevant ranks, then p / x
                ap[qi] = np.cumsum(np.arange(1, len(ranks) + 1) / (ranks + 1))[-1] / len(ranks)
            top[qi] = np.count_nonzero(relevant[:TOP_K]) / TOP_K

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # argsort releases the GIL
        list(pool.map(block, range(0, len(query), _BLOCK)))
    return ap, top


def legacy_ap_argsort(codes: CodeSets) -> np.ndarray:
    """Opt-in: per-query AP on the legacy distance in the released tie order (numpy's
    default ``argsort``), exactly as the released ``cat_apcal``; a sort per query.

    Two gallery items tie at legacy distance 0 (position 7 is ignored); with so few items
    numpy sorts by insertion, which keeps gallery order, so the non-relevant one comes first:

    >>> q = np.array([[1] * 8]); g = np.array([[1] * 7 + [-1], [1] * 8])
    >>> legacy_ap_argsort(CodeSets(q, np.array([0]), g, np.array([1, 0]), "cpu")).tolist()
    [0.5]
    """
    return released_ranking_scores(codes)[0]


def legacy_precision_at_50_argsort(codes: CodeSets) -> np.ndarray:
    """Opt-in: per-query precision of the top 50 on the legacy distance in the released tie
    order (numpy's default ``argsort``), exactly as the released ``cat_apcal``."""
    return released_ranking_scores(codes)[1]


@njit(cache=True, nogil=True)
def _distance_kernel(qw, gw, out):  # pragma: no cover - compiled
    for qi in range(qw.shape[0]):
        for j in range(gw.shape[0]):
            d = 0
            for w in range(qw.shape[1]):
                d += popcount(qw[qi, w] ^ gw[j, w])
            out[qi, j] = d


@njit(parallel=True, cache=True, nogil=True)
def _stable_top_k_kernel(qw, ql, gw, gl, k, t_total, hits_out):  # pragma: no cover - compiled
    q_total, g_total = qw.shape[0], gw.shape[0]
    blocks = (q_total + _BLOCK - 1) // _BLOCK
    for block in prange(blocks):
        dist = np.empty(g_total, np.int64)
        hist = np.empty(t_total, np.int64)
        for qi in range(block * _BLOCK, min(q_total, (block + 1) * _BLOCK)):
            hist[:] = 0
            for j in range(g_total):
                d = 0
                for w in range(qw.shape[1]):
                    d += popcount(qw[qi, w] ^ gw[j, w])
                dist[j] = d
                hist[d] += 1
            tie, before = t_total, 0  # the distance the cut after k items falls in
            for t in range(t_total):
                if before + hist[t] >= k:
                    tie = t
                    break
                before += hist[t]
            inside = k - before  # positions of that tie inside the top k, in gallery order
            hits = 0
            for j in range(g_total):
                d = dist[j]
                if d < tie or (d == tie and inside > 0):
                    if d == tie:
                        inside -= 1
                    hits += gl[j] == ql[qi]
            hits_out[qi] = hits
