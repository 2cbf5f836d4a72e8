"""faiss binary indexes of codes (bench.retrieval.index) against the evaluation engine's own
distances: exact kinds equal them, approximate kinds are measured against the flat index."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.errors import BenchError
from bench.evaluation.codes import pack_codes
from bench.evaluation.hamming import count_ties, hamming_distances
from bench.retrieval.index import (
    IndexKind,
    IndexParams,
    build_index,
    index_kind,
    knn_recall,
    range_search,
    search,
)


def clustered_codes(n: int, bits: int, seed: int) -> np.ndarray:
    """Codes around a few centres (ties and near neighbours, as trained codes have)."""
    rng = np.random.default_rng(seed)
    centres = rng.choice([-1, 1], size=(6, bits))
    codes = centres[rng.integers(0, 6, n)]
    flips = rng.random((n, bits)) < 0.1
    return np.where(flips, -codes, codes).astype(np.int8)


def stable_order(query: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation's ranking: Hamming distance, ties by gallery index (brute force)."""
    dist = hamming_distances(query, gallery)
    order = np.lexsort((np.broadcast_to(np.arange(len(gallery)), dist.shape), dist), axis=1)
    return np.take_along_axis(dist, order, 1), order


@pytest.mark.parametrize("bits", [12, 36, 48, 64])
def test_flat_equals_the_engine_ranking(bits):
    gallery, queries = clustered_codes(300, bits, 0), clustered_codes(40, bits, 1)
    index = build_index(gallery, IndexKind.FLAT)
    assert index.d == -(-bits // 8) * 8  # padded to a multiple of 8
    k = 25
    hits = search(index, IndexKind.FLAT, queries, k)
    dist, order = stable_order(queries, gallery)
    np.testing.assert_array_equal(hits.distances, dist[:, :k])
    np.testing.assert_array_equal(hits.positions, order[:, :k])
    # the engine's own tie counts: the first k distances of its per-distance histogram
    ties = count_ties(pack_codes(queries), np.zeros(len(queries)), pack_codes(gallery), np.zeros(len(gallery)), bits)
    for q in range(len(queries)):
        from_counts = np.repeat(np.arange(bits + 1), ties.n[q])[:k]
        np.testing.assert_array_equal(hits.distances[q], from_counts)


def test_flat_range_search_equals_brute_force():
    gallery, queries = clustered_codes(200, 36, 2), clustered_codes(10, 36, 3)
    index = build_index(gallery, IndexKind.FLAT)
    dist = hamming_distances(queries, gallery)
    for radius in (0, 5, 12):
        found = range_search(index, IndexKind.FLAT, queries, radius, 36)
        for q, (d, p) in enumerate(found):
            expected = np.flatnonzero(dist[q] <= radius)
            expected = expected[np.lexsort((expected, dist[q][expected]))]
            np.testing.assert_array_equal(p, expected)
            np.testing.assert_array_equal(d, dist[q][expected])


@pytest.mark.parametrize("kind", [IndexKind.HASH, IndexKind.MULTIHASH, IndexKind.IVF, IndexKind.HNSW])
def test_approximate_kinds_recall_is_measured(kind):
    gallery, queries = clustered_codes(400, 48, 4), clustered_codes(30, 48, 5)
    exact = search(build_index(gallery, IndexKind.FLAT), IndexKind.FLAT, queries, 10)
    assert knn_recall(exact, exact) == 1.0
    hits = search(build_index(gallery, kind), kind, queries, 10)
    recall = knn_recall(hits, exact)
    assert 0.0 <= recall <= 1.0
    # every returned distance is the true Hamming distance of the returned item
    dist = hamming_distances(queries, gallery)
    found = hits.positions >= 0
    rows = np.nonzero(found)[0]
    np.testing.assert_array_equal(hits.distances[found], dist[rows, hits.positions[found]])


@pytest.mark.parametrize("kind,params", [(IndexKind.HASH, IndexParams(b=8, nflip=8)),
                                         (IndexKind.MULTIHASH, IndexParams(b=8, nhash=6, nflip=8)),
                                         (IndexKind.IVF, IndexParams(nlist=4, nprobe=4))])
def test_approximate_kinds_are_exact_when_they_probe_everything(kind, params):
    gallery, queries = clustered_codes(300, 48, 6), clustered_codes(20, 48, 7)
    exact = search(build_index(gallery, IndexKind.FLAT), IndexKind.FLAT, queries, 10)
    assert knn_recall(search(build_index(gallery, kind, params), kind, queries, 10), exact) == 1.0
    # and a hash that probes one bucket only misses some (the guard: recall can fall)
    if kind == IndexKind.HASH:
        narrow = search(build_index(gallery, kind, IndexParams(b=16, nflip=0)), kind, queries, 10)
        assert knn_recall(narrow, exact) < 1.0


def test_bad_index_input_is_one_line():
    with pytest.raises(BenchError, match="unknown index kind 'lsh'.*flat"):
        index_kind("lsh")
    index = build_index(clustered_codes(20, 12, 8), IndexKind.FLAT)
    with pytest.raises(BenchError, match="--radius 13: .* code length 12"):
        range_search(index, IndexKind.FLAT, clustered_codes(1, 12, 9), 13, 12)
    hnsw = build_index(clustered_codes(20, 12, 8), IndexKind.HNSW)
    with pytest.raises(BenchError, match="no range search"):
        range_search(hnsw, IndexKind.HNSW, clustered_codes(1, 12, 9), 2, 12)
    with pytest.raises(BenchError, match="do not fit an index of 16 bits"):
        search(index, IndexKind.FLAT, clustered_codes(1, 48, 9), 3)
    with pytest.raises(BenchError, match="exceeds"):
        build_index(clustered_codes(20, 48, 8), IndexKind.MULTIHASH, IndexParams(b=16, nhash=4))
