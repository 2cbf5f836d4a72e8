"""faiss binary indexes over {-1, +1} codes: build, search (k nearest or a radius), recall.

A code of K bits is stored as faiss stores binary vectors: ``d/8`` uint8 bytes, most
significant bit first (:func:`bench.evaluation.codes.pack_codes`). faiss needs ``d`` to be a
multiple of 8, so a code whose length is not (12 or 36 bits) is padded to the next multiple of
8 with zero bits, the same constant bits on every code: every Hamming distance is unchanged.

Kinds (:class:`IndexKind`): ``flat`` (exhaustive, exact: ``IndexBinaryFlat``), ``hash``
(``IndexBinaryHash``: one table keyed by the first ``b`` bits, probing keys within ``nflip``
flips), ``multihash`` (multi-index hashing, Norouzi et al.: ``IndexBinaryMultiHash``, ``nhash``
tables of ``b`` bits), ``ivf`` (``IndexBinaryIVF`` over a flat quantizer) and ``hnsw``
(``IndexBinaryHNSW``). Only ``flat`` is exact for k nearest neighbours; the others are measured
against it (:func:`knn_recall`).

Positions in an index are the rows of the codes it was built from (0..N-1); callers keep the
ids and identities of those rows beside it.

>>> codes = np.array([[1, -1, 1, 1, -1, -1, 1, 1, -1, 1, -1, -1], [-1] * 12, [1] * 12], dtype=np.int8)
>>> index = build_index(codes, IndexKind.FLAT)
>>> index.d, index.ntotal
(16, 3)
>>> hits = search(index, IndexKind.FLAT, codes[:1], k=3)
>>> hits.distances.tolist(), hits.positions.tolist()
([[0, 6, 6]], [[0, 1, 2]])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

import faiss
import numpy as np

from bench.api.errors import BenchError, unknown_name
from bench.evaluation.codes import pack_codes


class IndexKind(StrEnum):
    """The faiss binary index kinds a gallery can be searched with."""

    FLAT = "flat"
    HASH = "hash"
    MULTIHASH = "multihash"
    IVF = "ivf"
    HNSW = "hnsw"


EXACT_KINDS = frozenset({IndexKind.FLAT})  # exact k nearest; the others' recall is measured
RANGE_KINDS = frozenset({IndexKind.FLAT, IndexKind.HASH, IndexKind.MULTIHASH, IndexKind.IVF})  # faiss: no HNSW range search


def index_kind(name: str) -> IndexKind:
    """The kind named ``name``; a one-line error listing the known kinds otherwise.

    >>> index_kind("multihash").value
    'multihash'
    """
    try:
        return IndexKind(name)
    except ValueError:
        raise unknown_name("index kind", name, [k.value for k in IndexKind]) from None


@dataclass(frozen=True)
class IndexParams:
    """Construction and search settings; ``None`` means the default for the gallery size
    (:func:`resolve_params`): ``b`` bits per hash key, ``nhash`` tables, ``nflip`` bits flipped
    per key when probing, ``nlist`` IVF lists, ``nprobe`` lists probed, ``m`` HNSW links,
    ``ef_search`` HNSW search breadth."""

    b: int | None = None
    nhash: int | None = None
    nflip: int | None = None
    nlist: int | None = None
    nprobe: int | None = None
    m: int | None = None
    ef_search: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


def padded_bits(bits: int) -> int:
    """faiss's ``d`` for codes of ``bits`` bits: the next multiple of 8.

    >>> padded_bits(12), padded_bits(36), padded_bits(48)
    (16, 40, 48)
    """
    return -(-bits // 8) * 8


def faiss_rows(codes: np.ndarray) -> np.ndarray:
    """(N, K) codes in {-1, +1} -> (N, d/8) contiguous uint8 rows, zero padded to ``d``
    (:func:`padded_bits`); packed rows (uint8) pass through."""
    codes = np.asarray(codes)
    rows = codes if codes.dtype == np.uint8 else pack_codes(codes)
    return np.ascontiguousarray(rows, dtype=np.uint8)


def resolve_params(kind: IndexKind, bits: int, n: int, params: IndexParams = IndexParams()) -> IndexParams:
    """``params`` with every unset setting ``kind`` uses given its default for ``n`` codes of
    ``bits`` bits: hash keys of about log2(n) bits (at most 24 and the code length), as many
    multi-index tables as fit (``bits // b``, Norouzi et al.'s m = K / log2 n), ``nflip`` 1,
    sqrt(n) IVF lists with an eighth of them probed, 16 HNSW links with ``ef_search`` 64.

    >>> resolve_params(IndexKind.MULTIHASH, 48, 280)
    IndexParams(b=8, nhash=6, nflip=1, nlist=None, nprobe=None, m=None, ef_search=None)
    """
    key = min(bits, 24, max(1, round(math.log2(max(n, 2)))))
    d = padded_bits(bits)
    if kind == IndexKind.HASH:
        return replace(params, b=params.b or key, nflip=1 if params.nflip is None else params.nflip)
    if kind == IndexKind.MULTIHASH:
        b = params.b or key
        return replace(params, b=b, nhash=params.nhash or max(1, d // b), nflip=1 if params.nflip is None else params.nflip)
    if kind == IndexKind.IVF:
        nlist = params.nlist or max(1, min(n, round(math.sqrt(n))))
        return replace(params, nlist=nlist, nprobe=params.nprobe or max(1, nlist // 8))
    if kind == IndexKind.HNSW:
        return replace(params, m=params.m or 16, ef_search=params.ef_search or 64)
    return params


def check_params(kind: IndexKind, bits: int, params: IndexParams) -> None:
    """Refuse settings faiss cannot build (one line naming the fix)."""
    d = padded_bits(bits)
    if kind in (IndexKind.HASH, IndexKind.MULTIHASH) and not 1 <= (params.b or 0) <= min(d, 63):
        raise BenchError(f"--b {params.b}: a hash key takes between 1 and {min(d, 63)} bits of a {bits}-bit code")
    if kind == IndexKind.MULTIHASH and (params.nhash or 0) * (params.b or 0) > d:
        raise BenchError(f"--nhash {params.nhash} x --b {params.b} exceeds the {d} bits of a padded {bits}-bit code; "
                         "lower one of them")
    if (params.nflip or 0) < 0:
        raise BenchError(f"--nflip {params.nflip}: give a number of bits >= 0")


def build_index(codes: np.ndarray, kind: IndexKind, params: IndexParams = IndexParams(), *,
                bits: int | None = None) -> faiss.IndexBinary:
    """A faiss binary index of ``codes`` ((N, K) in {-1, +1}, or packed uint8 rows with
    ``bits`` given), positions 0..N-1 in row order; unset ``params`` take
    :func:`resolve_params`'s defaults."""
    bits = bits if bits is not None else np.asarray(codes).shape[1]
    rows = faiss_rows(codes)
    d = padded_bits(bits)
    if rows.shape[1] * 8 != d:
        raise BenchError(f"codes of {rows.shape[1] * 8} padded bits do not hold {bits}-bit codes; "
                         "pass the codes' own length")
    params = resolve_params(kind, bits, len(rows), params)
    check_params(kind, bits, params)
    index = empty_index(kind, d, params)
    if kind == IndexKind.IVF:
        index.train(rows)
    index.add(rows)
    apply_search_params(index, kind, params)
    return index


def empty_index(kind: IndexKind, d: int, params: IndexParams) -> faiss.IndexBinary:
    """An empty ``kind`` index of ``d`` bits with resolved ``params`` (untrained for IVF)."""
    b, nhash, nlist, m = params.b or 0, params.nhash or 0, params.nlist or 1, params.m or 16
    if kind == IndexKind.HASH:
        return faiss.IndexBinaryHash(d, b)
    if kind == IndexKind.MULTIHASH:
        return faiss.IndexBinaryMultiHash(d, nhash, b)
    if kind == IndexKind.HNSW:
        return faiss.IndexBinaryHNSW(d, m)
    if kind == IndexKind.IVF:
        quantizer: Any = faiss.IndexBinaryFlat(d)
        ivf: Any = faiss.IndexBinaryIVF(quantizer, d, nlist)
        quantizer.this.disown()  # the IVF index frees its quantizer (else Python frees it under it)
        ivf.own_fields = True
        return ivf
    return faiss.IndexBinaryFlat(d)


def apply_search_params(index: Any, kind: IndexKind, params: IndexParams) -> None:
    """Set the search-time settings (not kept by faiss's index files): ``nflip`` (hash kinds),
    ``nprobe`` (IVF), ``efSearch`` (HNSW); the flat index counts distances (``use_heap``
    off), which ranks tied items by position, as the evaluation's stable order does."""
    if kind == IndexKind.FLAT:
        index.use_heap = False
    elif kind in (IndexKind.HASH, IndexKind.MULTIHASH):
        index.nflip = params.nflip
    elif kind == IndexKind.IVF:
        index.nprobe = params.nprobe
    elif kind == IndexKind.HNSW:
        index.hnsw.efSearch = params.ef_search


@dataclass(frozen=True)
class Hits:
    """k-NN results: (Q, k) int32 Hamming distances and int64 positions in the index; a
    query with fewer than k results (an approximate kind) is padded with distance -1 and
    position -1."""

    distances: np.ndarray
    positions: np.ndarray


def search(index: faiss.IndexBinary, kind: IndexKind, queries: np.ndarray, k: int) -> Hits:
    """The ``k`` nearest positions of each query (codes in {-1, +1} or packed rows), by
    increasing distance, ties by position (faiss's order for the approximate kinds)."""
    rows = faiss_rows(queries)
    if rows.shape[1] * 8 != index.d:
        raise BenchError(f"query codes of {rows.shape[1] * 8} padded bits do not fit an index of {index.d} bits; "
                         "encode the queries with the run that built the index")
    k = max(1, min(int(k), index.ntotal))
    distances, positions = index.search(rows, k)
    missing = positions < 0
    distances = np.where(missing, -1, distances).astype(np.int32)
    # order each row by (distance, position); padding goes last
    key = np.where(missing, np.iinfo(np.int64).max, distances.astype(np.int64) * (index.ntotal + 1) + positions)
    order = np.argsort(key, axis=1, kind="stable")
    return Hits(np.take_along_axis(distances, order, 1), np.take_along_axis(positions, order, 1))


def check_range(kind: IndexKind, radius: int, bits: int) -> None:
    """Refuse a radius outside 0..``bits`` and a kind faiss cannot range-search."""
    if not 0 <= radius <= bits:
        raise BenchError(f"--radius {radius}: a Hamming radius lies between 0 and the code length {bits}")
    if kind not in RANGE_KINDS:
        known = ", ".join(sorted(k.value for k in RANGE_KINDS))
        raise BenchError(f"index kind '{kind.value}' has no range search in faiss; build a {known} index for --radius")


def range_search(index: faiss.IndexBinary, kind: IndexKind, queries: np.ndarray, radius: int,
                 bits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every position within Hamming ``radius`` (inclusive) of each query, as (distances,
    positions) sorted by (distance, position); exact for ``flat``, the probed buckets or lists
    only for the others."""
    check_range(kind, radius, bits)
    rows = faiss_rows(queries)
    # faiss keeps distances strictly below its radius
    limits, distances, positions = index.range_search(rows, radius + 1)
    out = []
    for q in range(len(rows)):
        d, p = distances[limits[q]:limits[q + 1]], positions[limits[q]:limits[q + 1]]
        order = np.lexsort((p, d))
        out.append((d[order].astype(np.int32), p[order].astype(np.int64)))
    return out


def knn_recall(approximate: Hits, exact: Hits) -> float:
    """Recall of the true k nearest neighbours, tie-aware: the share of the k results whose
    distance is at most the exact k-th distance (any item tied with the k-th nearest is a true
    k-th nearest), averaged over queries; 1.0 for an exact search.

    >>> exact = Hits(np.array([[0, 1, 1]]), np.array([[4, 2, 7]]))
    >>> knn_recall(Hits(np.array([[0, 1, 2]]), np.array([[4, 9, 3]])), exact)  # 9 ties with the 3rd nearest
    0.6666666666666666
    """
    kth = exact.distances[:, -1:]
    good = (approximate.positions >= 0) & (approximate.distances <= kth)
    return float(good.sum(axis=1).mean() / exact.distances.shape[1])
