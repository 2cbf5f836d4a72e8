"""``map_legacy``: the mAP under the Hamming distance computed by the released DDH/DCBH
evaluation code.

Their ``compactbit`` packs bits written for {0,1} input but is fed {-1,+1} codes: each
word of ``w`` bits (8, or fewer for the last word) becomes ``sum_i 2^i * s_i``
``= 2C - (2^w - 1)`` (C = the word's value read as {0,1} bits, bit i of the word is
code position 8*word + i), stored into a uint8 array, where a negative float wraps
modulo 256 on x86-64. ``hammingDist`` then counts differing bits of those bytes.
Effective metric: the top bit of every full word is ignored; the top bit of a trailing
``w``-bit word counts ``8 - w`` times (48 bits -> 42; 12 bits -> 7 + 3 + 4*[bit 11]).
Published tables may or may not have used it, so ``map_legacy`` reports it next to the
true numbers (ties in gallery order, as the released code's stable ranking).
"""

from __future__ import annotations

import numpy as np

from bench.evaluation.hamming import count_ties
from bench.evaluation.metrics import stable_ap
from bench.evaluation.plugin_metrics import CodeSets


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
    counts = count_ties(
        legacy_compactbit_bytes(codes.query), codes.query_labels,
        legacy_compactbit_bytes(codes.gallery), codes.gallery_labels,
        legacy_max_distance(codes.bits), codes.device,
    )
    return stable_ap(counts.stable, counts.r)
