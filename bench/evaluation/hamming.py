"""Hamming tie counting: per query and per distance, how many gallery items and how many relevant.

Ranking by Hamming distance needs no sort. For each query the engine only needs
``n[t]`` (gallery items at distance ``t``) and ``r[t]`` (relevant ones among them),
plus, for the deterministic "stable" order (ties broken by gallery index), the sum over
relevant items of ``hits / rank``. :func:`count_ties` computes all three in one streaming
pass over the gallery per query, so memory is O(Q*T + G) whatever the sizes.

CPU path: a numba kernel (XOR + hardware popcount on uint64 words, parallel over
queries). Measured on the 2-core development machine (48-bit codes, counting alone) it is
about 5x faster than numpy ``bitwise_count`` + per-row ``bincount`` and tens of times
faster than a torch matrix product + ``bincount``; faiss only computes distances (its 64-bit
path takes about as long as our whole evaluation) and would still need the counting (see
``benchmarks/eval_table.py``). CUDA path: torch (:mod:`bench.evaluation.hamming_torch`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, parallel_chunksize, prange, types
from numba.extending import intrinsic

from bench.evaluation.codes import words_from_packed
from bench.evaluation.ties import TieCounts

_SHIFT = 32  # the kernel keeps n (low 32 bits) and r (high bits) in one int64 counter
_LOW = (1 << _SHIFT) - 1
_QUERY_BLOCK = 8


def hamming_distances(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Full Hamming distance matrix between {-1,+1} codes: ``(K - q.g) / 2`` (small inputs only).

    >>> hamming_distances(np.array([[1, 1, -1]]), np.array([[1, 1, -1], [-1, -1, 1]])).tolist()
    [[0, 3]]
    """
    k = query.shape[1]
    dots = np.asarray(query, dtype=np.int32) @ np.asarray(gallery, dtype=np.int32).T
    return (k - dots) // 2


def count_ties(
    query_packed: np.ndarray,
    query_labels: np.ndarray,
    gallery_packed: np.ndarray,
    gallery_labels: np.ndarray,
    max_distance: int,
    device: str = "cpu",
) -> TieCounts:
    """Tie counts for packed codes (uint8 bytes, as :func:`bench.evaluation.codes.pack_codes` gives).

    The distance is the popcount of the XOR of the bytes; labels are integers and
    "relevant" means equal label. ``device='cpu'`` runs the numba kernel, anything else
    (``'cuda'``, ``'cuda:1'``) the torch path.

    >>> from bench.evaluation.codes import pack_codes
    >>> q = pack_codes(np.array([[1, 1]])); g = pack_codes(np.array([[1, 1], [-1, -1], [1, -1]]))
    >>> c = count_ties(q, np.array([0]), g, np.array([0, 0, 1]), 2)
    >>> c.n.tolist(), c.r.tolist(), c.stable.tolist()   # AP_stable = (1/1 + 2/3) / 2
    ([[1, 1, 1]], [[1, 0, 1]], [1.6666666666666665])
    """
    if device != "cpu":
        from bench.evaluation.hamming_torch import count_ties_torch

        return count_ties_torch(
            query_packed, query_labels, gallery_packed, gallery_labels, max_distance, device
        )
    qw = np.ascontiguousarray(words_from_packed(query_packed))
    gw = np.ascontiguousarray(words_from_packed(gallery_packed))
    ql = np.ascontiguousarray(query_labels, dtype=np.int64)
    gl = np.ascontiguousarray(gallery_labels, dtype=np.int64)
    t = max_distance + 1
    n = np.zeros((qw.shape[0], t), dtype=np.int64)
    r = np.zeros((qw.shape[0], t), dtype=np.int64)
    stable = np.zeros(qw.shape[0], dtype=np.float64)
    if qw.shape[0] and gw.shape[0]:
        with parallel_chunksize(1):  # dynamic scheduling: robust when cores are shared
            _count_kernel(qw, ql, gw, gl, n, r, stable)
    return TieCounts(n, r, stable)


@intrinsic
def popcount(typingctx, x):
    """LLVM ``ctpop`` on a uint64 (one POPCNT instruction on x86-64), for numba kernels."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(parallel=True, cache=True, nogil=True)
def _count_kernel(qw, ql, gw, gl, n_out, r_out, stable_out):  # pragma: no cover - compiled
    q_total, words = qw.shape
    g_total = gw.shape[0]
    t_total = n_out.shape[1]
    blocks = (q_total + _QUERY_BLOCK - 1) // _QUERY_BLOCK
    for block in prange(blocks):
        # Per relevant item: its distance and the packed (r, n) counter at that distance
        # just before it, i.e. how many (relevant) items precede it inside its tie.
        dist_buf = np.empty(g_total + 1, np.int32)
        seen_buf = np.empty(g_total + 1, np.int64)
        hist = np.empty(t_total, np.int64)
        n_before = np.empty(t_total, np.int64)
        r_before = np.empty(t_total, np.int64)
        for qi in range(block * _QUERY_BLOCK, min(q_total, (block + 1) * _QUERY_BLOCK)):
            label = ql[qi]
            x = qw[qi]
            x0 = x[0]
            hist[:] = 0
            m = 0
            for j in range(g_total):
                if words == 1:
                    d = np.int64(popcount(x0 ^ gw[j, 0]))
                else:
                    d = np.int64(0)
                    for w in range(words):
                        d += np.int64(popcount(x[w] ^ gw[j, w]))
                rel = np.int64(gl[j] == label)
                seen = hist[d]
                dist_buf[m] = d  # branch-free: overwritten unless the item is relevant
                seen_buf[m] = seen
                m += rel
                hist[d] = seen + 1 + (rel << _SHIFT)
            n_acc = 0
            r_acc = 0
            for t in range(t_total):
                n_t = hist[t] & _LOW
                r_t = hist[t] >> _SHIFT
                n_before[t] = n_acc
                r_before[t] = r_acc
                n_acc += n_t
                r_acc += r_t
                n_out[qi, t] = n_t
                r_out[qi, t] = r_t
            total = 0.0
            for i in range(m):
                d = dist_buf[i]
                seen = seen_buf[i]
                hits = r_before[d] + (seen >> _SHIFT) + 1
                rank = n_before[d] + (seen & _LOW) + 1
                total += hits / rank
            stable_out[qi] = total
