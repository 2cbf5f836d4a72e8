"""Search a run's stored gallery index with codes: new images encoded by the run's model, or
the run's own query split; the k nearest, or every gallery image within a radius, each with
its distance, image id, identity and whether it is the query's identity (when known).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.api.errors import BenchError
from bench.retrieval.index import IndexKind, build_index, knn_recall, range_search, search
from bench.retrieval.runs import RunHandle
from bench.retrieval.store import StoredIndex


@dataclass(frozen=True)
class Match:
    """One gallery image found for a query."""

    rank: int
    distance: int
    image_id: int  # the image's position in the run's dataset
    label: int
    identity: str
    same: bool | None  # same identity as the query (None: the query's identity is unknown)


@dataclass
class QueryResult:
    """What one query found, and how long encoding (all queries) and searching took."""

    query: str
    identity: str | None
    matches: list[Match] = field(default_factory=list)


def check_lengths(index: StoredIndex, bits: int, encoder_run: str, index_run: str) -> None:
    """Refuse codes whose length differs from the index's."""
    if bits != index.bits:
        raise BenchError(f"run '{encoder_run}' gives {bits}-bit codes but the {index.kind.value} index of run "
                         f"'{index_run}' holds {index.bits}-bit codes; search an index built from a run of "
                         f"{bits} bits (`bench index build {encoder_run} --kind {index.kind.value}`)")


def query_codes(handle: RunHandle, images: list[Path], query_split: bool,
                aligned: bool = False) -> tuple[np.ndarray, list[str], list[int | None], float]:
    """Codes, names and labels of the queries: image files (encoded now; their identity is
    unknown) or the run's stored query split. Also the seconds encoding took."""
    if bool(images) == query_split:
        raise BenchError("give either --image FILE (repeatable) or --query-split")
    if query_split:
        codes = handle.codes
        return codes.query, [f"query {int(i)}" for i in codes.query_ids], [int(v) for v in codes.query_labels], 0.0
    handle.model  # noqa: B018 - downloaded and loaded before the clock starts: the time is encoding alone
    start = time.perf_counter()
    encoded = handle.encode_files(images, aligned)
    return encoded, [str(p) for p in images], [None] * len(images), time.perf_counter() - start


def run_search(handle: RunHandle, index: StoredIndex, codes: np.ndarray, names: list[str],
               labels: list[int | None], *, k: int, radius: int | None) -> tuple[list[QueryResult], float]:
    """The matches of each query (k nearest, or within ``radius``) and the seconds searching took."""
    if k < 1:
        raise BenchError(f"--k {k}: ask for at least one neighbour")
    start = time.perf_counter()
    if radius is None:
        hits = search(index.index, index.kind, codes, k)
        found = [(hits.distances[q], hits.positions[q]) for q in range(len(codes))]
    else:
        found = range_search(index.index, index.kind, codes, radius, index.bits)
    seconds = time.perf_counter() - start
    results = []
    for name, label, (distances, positions) in zip(names, labels, found, strict=True):
        result = QueryResult(name, None if label is None else handle.identity(label))
        for rank, (d, p) in enumerate(((d, p) for d, p in zip(distances, positions, strict=True) if p >= 0), 1):
            g = int(index.labels[p])
            result.matches.append(Match(rank, int(d), int(index.ids[p]), g, handle.identity(g),
                                        None if label is None else g == label))
        results.append(result)
    return results, seconds


def recall_against_exhaustive(gallery: np.ndarray, index: StoredIndex, codes: np.ndarray, k: int) -> float:
    """The recall of the true ``k`` nearest of ``codes`` in ``index`` (built from ``gallery``,
    the codes in index order) against exhaustive search (:func:`bench.retrieval.index.knn_recall`)."""
    exact = search(build_index(gallery, IndexKind.FLAT), IndexKind.FLAT, codes, k)
    return knn_recall(search(index.index, index.kind, codes, k), exact)
