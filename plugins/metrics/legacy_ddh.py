"""The legacy distance of the released DDH/DCBH evaluation code, and the metrics read from
its tie counts: ``map_legacy``, ``precision_r2_legacy``, ``recall_r2_legacy``.

Their ``compactbit`` packs bits written for {0,1} input but is fed {-1,+1} codes: each
word of ``w`` bits (8, or fewer for the last word) becomes ``sum_i 2^i * s_i``
``= 2C - (2^w - 1)`` (C = the word's value read as {0,1} bits, bit i of the word is
code position 8*word + i), stored into a uint8 array, where a negative float wraps
modulo 256 on x86-64. ``hammingDist`` then counts differing bits of those bytes.
Effective metric: the top bit of every full word is ignored; the top bit of a trailing
``w``-bit word counts ``8 - w`` times (48 bits -> 42; 12 bits -> 7 + 3 + 4*[bit 11]).
Published tables may or may not have used it, so the legacy metrics report it next to the
true numbers: ``map_legacy`` with ties in gallery order (a stable sort; the released
``np.argsort`` order is the opt-in ``map_legacy_argsort``, :mod:`plugins.metrics.legacy_ranking`),
and precision / recall within Hamming radius 2 as the released ``evaluate_macro`` computes
them (``hammTrainTest <= 2``; an empty ball has precision 0, a query without relevant
items recall 0). The tie counts are taken once per evaluation and shared by the three.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from bench.evaluation.codes import words_from_packed
from bench.evaluation.hamming import count_ties
from bench.evaluation.metrics import stable_ap
from bench.evaluation.plugin_metrics import CodeSets
from bench.evaluation.ties import TieCounts

LEGACY_RADIUS = 2  # hammRadius in DDH.py and DCBH's RetrievalTest.py
Value = TypeVar("Value")


def per_code_sets(compute: Callable[[CodeSets], Value]) -> Callable[[CodeSets], Value]:
    """Memoise ``compute`` on the last :class:`CodeSets` it saw (by identity), so the metrics
    of one evaluation share one pass; a new evaluation (a new object) recomputes.

    >>> calls = []
    >>> f = per_code_sets(lambda codes: calls.append(1) or len(calls))
    >>> a = CodeSets(np.ones((1, 2)), np.zeros(1), np.ones((1, 2)), np.zeros(1), "cpu")
    >>> f(a), f(a), f(CodeSets(a.query, a.query_labels, a.gallery, a.gallery_labels, "cpu"))
    (1, 1, 2)
    """
    last: list[tuple[weakref.ref, Value]] = []

    @functools.wraps(compute)
    def memoised(codes: CodeSets) -> Value:
        entry = last[0] if last else None  # one read: safe when threads evaluate at once
        if entry is not None and entry[0]() is codes:
            return entry[1]
        value = compute(codes)
        last[:] = [(weakref.ref(codes), value)]
        return value

    return memoised


def legacy_compactbit_bytes(codes: np.ndarray) -> np.ndarray:
    """The bytes that DDH's ``compactbit`` stores for (N, K) {-1,+1} codes: (N, ceil(K/8)) uint8.

    >>> legacy_compactbit_bytes(np.array([[1, 1, 1, 1, 1, 1, 1, 1, -1, 1]])).tolist()
    [[255, 1]]
    >>> legacy_compactbit_bytes(np.array([[-1] * 8])).tolist()   # -255 wraps to 1
    [[1]]
    """
    bits = np.asarray(codes) > 0
    n, k = bits.shape
    words = -(-k // 8)
    padded = np.zeros((n, words * 8), dtype=bool)
    padded[:, :k] = bits
    ones = np.packbits(padded.reshape(n, words, 8), axis=2, bitorder="little")[:, :, 0]
    width = np.full(words, 8, dtype=np.int64)
    width[-1] = k - 8 * (words - 1)
    value = 2 * ones.astype(np.int64) - (2**width - 1)
    return np.mod(value, 256).astype(np.uint8)


def legacy_max_distance(bits: int) -> int:
    """Largest value the legacy distance can take for ``bits``-long codes (all stored bits).

    >>> legacy_max_distance(12), legacy_max_distance(48)
    (16, 48)
    """
    return 8 * -(-bits // 8)


def legacy_words(packed: np.ndarray) -> np.ndarray:
    """The legacy bytes as little-endian uint64 words (zero padded), for popcount kernels.

    >>> legacy_words(legacy_compactbit_bytes(np.array([[-1] * 8]))).tolist()
    [[1]]
    """
    return np.ascontiguousarray(words_from_packed(packed))


@per_code_sets
def legacy_counts(codes: CodeSets) -> TieCounts:
    """Per query and legacy distance: gallery items, relevant ones, and the stable-order sum."""
    return count_ties(
        legacy_compactbit_bytes(codes.query), codes.query_labels,
        legacy_compactbit_bytes(codes.gallery), codes.gallery_labels,
        legacy_max_distance(codes.bits), codes.device,
    )


def legacy_ap(codes: CodeSets) -> np.ndarray:
    """Per-query AP under the released DDH/DCBH code's Hamming distance (``compactbit`` fed
    {-1,+1} codes), ties in gallery order.

    The relevant item differs from the query in positions 6 and 7, the other one in position
    0: by true distance (2 vs 1) the AP is 1/2; position 7 is ignored, so it is a tie, won in
    gallery order:

    >>> q = np.array([[1] * 8]); g = np.array([[1] * 6 + [-1, -1], [-1] + [1] * 7])
    >>> legacy_ap(CodeSets(q, np.array([0]), g, np.array([0, 1]), "cpu")).tolist()
    [1.0]
    """
    counts = legacy_counts(codes)
    return stable_ap(counts.stable, counts.r)


def _ball(codes: CodeSets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: items retrieved within the legacy radius, relevant ones among them, and
    relevant items in the whole gallery."""
    counts = legacy_counts(codes)
    return (counts.n[:, : LEGACY_RADIUS + 1].sum(axis=1), counts.r[:, : LEGACY_RADIUS + 1].sum(axis=1),
            counts.r.sum(axis=1))


def legacy_precision_r2(codes: CodeSets) -> np.ndarray:
    """Per-query precision within legacy Hamming distance 2, as the released
    ``evaluate_macro`` (an empty ball scores 0).

    >>> q = np.array([[1] * 8]); g = np.array([[1] * 5 + [-1] * 3, [-1, -1] + [1] * 6])
    >>> legacy_precision_r2(CodeSets(q, np.array([0]), g, np.array([0, 1]), "cpu")).tolist()
    [0.5]
    """
    retrieved, hits, _ = _ball(codes)
    return np.where(retrieved > 0, hits / np.maximum(retrieved, 1), 0.0)


def legacy_recall_r2(codes: CodeSets) -> np.ndarray:
    """Per-query recall within legacy Hamming distance 2, as the released ``evaluate_macro``
    (a query without relevant gallery items scores 0).

    >>> q = np.array([[1] * 8]); g = np.array([[1] * 5 + [-1] * 3, [1] * 8])
    >>> legacy_recall_r2(CodeSets(q, np.array([0]), g, np.array([0, 0]), "cpu")).tolist()
    [1.0]
    """
    _, hits, relevant = _ball(codes)
    return np.where(relevant > 0, hits / np.maximum(relevant, 1), 0.0)
