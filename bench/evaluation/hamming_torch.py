"""Torch path of :func:`bench.evaluation.hamming.count_ties`, for CUDA (also runs on the CPU, for tests).

Distances come from a matrix product of {-1,+1} bit vectors, ``d = (L - q.g) / 2``
(exact: integer sums far below 2^24 in float32 accumulation). The work is chunked over
queries and gallery so that no chunk holds more than ``chunk_elements`` distances.
Each block of distances is sorted once per row (stable, int16 keys): the per-distance
counts come from ``searchsorted`` on the sorted rows and the stable-order rank of every
relevant item from its sorted position, offset by what earlier gallery chunks hold.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.evaluation.codes import unpack_codes
from bench.evaluation.ties import TieCounts

DEFAULT_CHUNK_ELEMENTS = 1 << 26
_BYTES_PER_ELEMENT = 64  # peak temporaries per distance in the stable pass


def count_ties_torch(
    query_packed: np.ndarray,
    query_labels: np.ndarray,
    gallery_packed: np.ndarray,
    gallery_labels: np.ndarray,
    max_distance: int,
    device: str | torch.device = "cuda",
    chunk_elements: int | None = None,
) -> TieCounts:
    """Same contract as :func:`bench.evaluation.hamming.count_ties`, computed with torch on ``device``.

    >>> from bench.evaluation.codes import pack_codes
    >>> q = pack_codes(np.array([[1, 1]])); g = pack_codes(np.array([[1, 1], [-1, -1], [1, -1]]))
    >>> c = count_ties_torch(q, np.array([0]), g, np.array([0, 0, 1]), 2, "cpu")
    >>> c.n.tolist(), c.r.tolist(), round(float(c.stable[0]), 6)
    ([[1, 1, 1]], [[1, 0, 1]], 1.666667)
    """
    device = torch.device(device)
    if chunk_elements is None:
        chunk_elements = _default_chunk(device)
    bits = 8 * np.asarray(query_packed).shape[1]
    # float16 holds every integer up to 2048 exactly, so any partial dot product is exact.
    dtype = torch.float16 if device.type == "cuda" and bits <= 2048 else torch.float32
    q_bits = _signed_bits(query_packed, device, dtype)
    g_bits = _signed_bits(gallery_packed, device, dtype)
    ql = torch.as_tensor(np.asarray(query_labels, dtype=np.int64), device=device)
    gl = torch.as_tensor(np.asarray(gallery_labels, dtype=np.int64), device=device)
    q_total, g_total = q_bits.shape[0], g_bits.shape[0]
    t_total = max_distance + 1
    g_chunk = max(1, min(g_total, chunk_elements))
    q_chunk = max(1, chunk_elements // g_chunk)
    n_out = np.zeros((q_total, t_total), dtype=np.int64)
    r_out = np.zeros((q_total, t_total), dtype=np.int64)
    stable_out = np.zeros(q_total, dtype=np.float64)
    for q0 in range(0, q_total, q_chunk):
        q1 = min(q_total, q0 + q_chunk)
        n, r, stable = _ties_for_queries(q_bits[q0:q1], ql[q0:q1], g_bits, gl, g_chunk, t_total)
        n_out[q0:q1] = n.cpu().numpy()
        r_out[q0:q1] = r.cpu().numpy()
        stable_out[q0:q1] = stable.cpu().numpy()
    return TieCounts(n_out, r_out, stable_out)


def _default_chunk(device: torch.device) -> int:
    """2^26 distances per chunk on the CPU; on CUDA as many as half the free memory holds (<= 2^28)."""
    if device.type != "cuda":
        return DEFAULT_CHUNK_ELEMENTS
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(DEFAULT_CHUNK_ELEMENTS, min(1 << 28, free // 2 // _BYTES_PER_ELEMENT)))


def _signed_bits(packed: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Packed bytes -> (N, 8B) tensor of {-1,+1} (padding bits are -1 on both sides: distance 0)."""
    packed = torch.as_tensor(np.asarray(packed, dtype=np.uint8), device=device)
    return unpack_codes(packed, 8 * packed.shape[1]).to(dtype)


def _distances(q_bits, g_bits) -> torch.Tensor:
    """int16 distances ``(L - q.g) / 2``; every intermediate is an integer the dtype holds exactly."""
    length = q_bits.shape[1]
    return (q_bits @ g_bits.T).sub_(length).mul_(-0.5).to(torch.int16)


class _SortedChunk:
    """One (query chunk x gallery chunk) block, distances stably sorted per row.

    Everything follows from the sort: per-row cumulative counts ``n_cum[q, t]`` (items
    at distance <= t) by ``searchsorted``, relevant ones from the running count of
    relevant items in sorted order.
    """

    def __init__(self, q_bits, ql, g_bits, gl, t_total):
        d = _distances(q_bits, g_bits)
        self.sorted_d, order = torch.sort(d, dim=1, stable=True)
        del d
        rel = ql.unsqueeze(1) == gl.unsqueeze(0)
        self.sorted_rel = rel.gather(1, order)
        del rel, order
        self.rel_cum = torch.cumsum(self.sorted_rel, dim=1, dtype=torch.int32)  # inclusive
        levels = torch.arange(t_total, device=q_bits.device, dtype=torch.int16)
        levels = levels.unsqueeze(0).expand(self.sorted_d.shape[0], -1).contiguous()
        self.n_cum = torch.searchsorted(self.sorted_d, levels, right=True)
        last = self.rel_cum.gather(1, (self.n_cum - 1).clamp_(min=0)).to(torch.int64)
        self.r_cum = torch.where(self.n_cum > 0, last, 0)

    def counts(self):
        return torch.diff(self.n_cum, dim=1, prepend=torch.zeros_like(self.n_cum[:, :1])), torch.diff(
            self.r_cum, dim=1, prepend=torch.zeros_like(self.r_cum[:, :1])
        )

    def stable_sum(self, rank_base, hits_base):
        """Sum over relevant items of hits/rank; ``rank_base[q, t]`` / ``hits_base[q, t]``
        hold what precedes this chunk's first item at distance t (all chunks, all closer
        distances), minus this chunk's items at closer distances."""
        rows, cols = torch.nonzero(self.sorted_rel, as_tuple=True)  # relevant items only
        distance = self.sorted_d[rows, cols].long()
        rank = rank_base[rows, distance] + cols + 1
        hits = hits_base[rows, distance] + self.rel_cum[rows, cols]
        total = torch.zeros(rank_base.shape[0], dtype=torch.float64, device=rank_base.device)
        return total.index_add_(0, rows, hits.double() / rank.double())


def _ties_for_queries(q_bits, ql, g_bits, gl, g_chunk, t_total):
    """n, r and the stable sum for one query chunk against the whole gallery.

    Pass 1 counts every gallery chunk, pass 2 scores relevant items with the global
    counts; with a single gallery chunk the sorted block of pass 1 is reused.
    """
    bounds = [(g0, min(len(gl), g0 + g_chunk)) for g0 in range(0, len(gl), g_chunk)]
    n = torch.zeros((q_bits.shape[0], t_total), dtype=torch.int64, device=q_bits.device)
    r = torch.zeros_like(n)
    block = None
    for g0, g1 in bounds:
        block = _SortedChunk(q_bits, ql, g_bits[g0:g1], gl[g0:g1], t_total)
        chunk_n, chunk_r = block.counts()
        n += chunk_n
        r += chunk_r
    n_before, r_before = torch.cumsum(n, dim=1) - n, torch.cumsum(r, dim=1) - r
    seen_n, seen_r = torch.zeros_like(n), torch.zeros_like(r)
    total = torch.zeros(q_bits.shape[0], dtype=torch.float64, device=q_bits.device)
    for g0, g1 in bounds:
        if len(bounds) > 1:
            block = _SortedChunk(q_bits, ql, g_bits[g0:g1], gl[g0:g1], t_total)
        chunk_n, chunk_r = block.counts()
        closer_n, closer_r = block.n_cum - chunk_n, block.r_cum - chunk_r
        total += block.stable_sum(n_before + seen_n - closer_n, r_before + seen_r - closer_r)
        seen_n += chunk_n
        seen_r += chunk_r
    return n, r, total
