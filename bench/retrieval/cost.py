"""What a code costs in a faiss index, measured: bytes per face (the code, the serialised
index, the heap the built index holds), build time, query latency (median, 99th percentile;
one query at a time and in batches), queries/s, and the recall of approximate indexes against
exhaustive search, at growing gallery sizes (nested: the first N rows of one database, the
gallery's own codes first, then distractors from :mod:`bench.retrieval.distractors`).

Binary kinds are :mod:`bench.retrieval.index`'s (its builder, defaults and search); the float
top line is faiss's ``IndexFlatIP`` (exhaustive) and ``IndexHNSWFlat`` over L2-normalised
embeddings (inner product = cosine). Recall is tie-aware (:func:`bench.retrieval.index.knn_recall`).
"""

from __future__ import annotations

import ctypes
import gc
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

import faiss
import numpy as np

from bench.retrieval.index import (
    Hits,
    IndexKind,
    IndexParams,
    build_index,
    knn_recall,
    resolve_params,
    search,
)


class FloatKind(StrEnum):
    """The float top line's faiss indexes."""

    FLAT = "float-flat"  # IndexFlatIP: exhaustive
    HNSW = "float-hnsw"  # IndexHNSWFlat, inner product

    @property
    def is_float(self) -> bool:
        return True


Kind = IndexKind | FloatKind
EXACT = (IndexKind.FLAT, FloatKind.FLAT)
# Default largest gallery per kind on a 2-core CPU: IVF's k-means and the graph builds take
# minutes per million faces, and 10^7 float embeddings take 5 GB; larger sizes are skipped
# (and said so) unless the caps are lifted.
DEFAULT_CAPS: dict[Kind, int] = {IndexKind.IVF: 10**6, IndexKind.HNSW: 10**6, FloatKind.FLAT: 10**6,
                                 FloatKind.HNSW: 10**5}
FLOAT_HNSW_M, FLOAT_EF_SEARCH = 16, 64  # as the binary HNSW's defaults


@dataclass(frozen=True)
class CostSettings:
    """How the measurement is done."""

    k: int = 10  # neighbours per query
    queries: int = 100  # single queries timed (the run's queries, cycled)
    batch: int = 100  # queries per batch
    batches: int = 3  # batches timed
    threads: int = 1  # faiss OpenMP threads while timing
    params: IndexParams = IndexParams()  # binary index settings (unset: the index module's defaults)


@dataclass
class CostRow:
    """One (index kind, gallery size) measurement."""

    kind: str
    size: int
    dim: int  # bits of a binary code, dimensions of a float embedding
    params: str
    code_bytes: float  # bytes of one stored code (packed bits, or 4 per float)
    disk_bytes_per_face: float  # serialised index / size
    ram_bytes_per_face: float  # heap the built index holds (mallinfo2 delta) / size
    build_s: float  # by `clock`, as the searches
    single_ms_median: float
    single_ms_p99: float
    batch_ms_median: float  # per batch of `batch` queries
    batch_ms_p99: float
    qps: float  # queries per second, batched
    recall: float | None  # tie-aware recall@k against exhaustive search (None: exact kind)
    batch: int = 0
    clock: str = "cpu"  # what the times count (clock_for): "cpu" (one thread's CPU time) or "wall"
    wall_ms_median: float = 0.0  # single-query wall time (what this shared machine gave)

    def as_dict(self) -> dict:
        return asdict(self)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def heap_bytes() -> int:
    """Bytes this process holds on the C heap now (glibc ``mallinfo2``: in-use arena blocks plus
    mmapped blocks), where an index's codes and tables live; unlike the resident set it does not
    miss memory that a freed earlier index left mapped. Falls back to the resident set."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        return int(info.uordblks + info.hblkhd)
    except (AttributeError, OSError):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def kind_params(kind: Kind, dim: int, size: int, settings: CostSettings) -> dict[str, int]:
    """The settings ``kind`` is built and searched with at ``size`` faces.

    >>> kind_params(IndexKind.MULTIHASH, 48, 10**6, CostSettings())
    {'b': 20, 'nhash': 2, 'nflip': 1}
    >>> kind_params(FloatKind.HNSW, 128, 10**4, CostSettings())
    {'m': 16, 'ef_search': 64}
    """
    if isinstance(kind, FloatKind):
        return {"m": FLOAT_HNSW_M, "ef_search": FLOAT_EF_SEARCH} if kind == FloatKind.HNSW else {}
    resolved = resolve_params(kind, dim, size, settings.params).as_dict()
    return {k: v for k, v in resolved.items() if v is not None}


def _build(kind: Kind, database: np.ndarray, dim: int, settings: CostSettings) -> faiss.Index:
    if isinstance(kind, IndexKind):
        return build_index(database, kind, settings.params, bits=dim)
    if kind == FloatKind.FLAT:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, FLOAT_HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = FLOAT_EF_SEARCH
    index.add(database)
    return index


def _search(index: faiss.Index, kind: Kind, queries: np.ndarray, k: int) -> Hits:
    if isinstance(kind, IndexKind):
        return search(index, kind, queries, k)
    similarities, positions = index.search(queries, k)
    return Hits(similarities, positions)


def float_recall(approximate: Hits, exact: Hits) -> float:
    """Tie-aware recall@k for inner products: the share of the k results whose similarity is at
    least the exhaustive k-th's (within float rounding).

    >>> exact = Hits(np.array([[0.9, 0.8]]), np.array([[3, 1]]))
    >>> float_recall(Hits(np.array([[0.9, 0.5]]), np.array([[3, 7]])), exact)
    0.5
    """
    kth = exact.distances[:, -1:] - 1e-5
    good = (approximate.positions >= 0) & (approximate.distances >= kth)
    return float(good.sum(axis=1).mean() / exact.distances.shape[1])


def timed(fn: Callable[[int], object], repeats: int, clock: Callable[[], float]) -> np.ndarray:
    """Times (ms, by ``clock``) of ``fn(0)``, ..., ``fn(repeats - 1)``."""
    out = np.empty(repeats)
    for i in range(repeats):
        start = clock()
        fn(i)
        out[i] = (clock() - start) * 1000
    return out


def clock_for(threads: int) -> tuple[str, Callable[[], float]]:
    """The clock searches are timed with: this process's CPU time at one thread (on a shared
    machine the wall time counts other jobs' turns too; one thread's CPU time is the latency
    it would have alone), the wall clock with several threads (CPU time would sum them)."""
    return ("cpu", time.process_time) if threads == 1 else ("wall", time.perf_counter)


def measure(kind: Kind, database: np.ndarray, queries: np.ndarray, dim: int, settings: CostSettings,
            exact: Hits | None = None) -> tuple[CostRow, Hits]:
    """Build ``kind`` over ``database``, time its searches and, against ``exact`` (the
    exhaustive search's hits for ``queries``), its recall. Returns the row and its own hits."""
    faiss.omp_set_num_threads(settings.threads)
    clock_name, clock = clock_for(settings.threads)
    gc.collect()  # an earlier index held in a reference cycle would be freed inside the window
    before = heap_bytes()
    start = clock()
    index = _build(kind, database, dim, settings)
    build_s = clock() - start
    held = heap_bytes() - before
    single = lambda i: _search(index, kind, queries[i % len(queries)][None], settings.k)  # noqa: E731
    singles = timed(single, settings.queries, clock)
    walls = timed(single, min(settings.queries, 20), time.perf_counter)
    batch = queries[np.arange(settings.batch) % len(queries)]
    batches = timed(lambda i: _search(index, kind, batch, settings.k), settings.batches, clock)
    hits = _search(index, kind, queries, settings.k)
    recall = None
    if exact is not None and kind not in EXACT:
        recall = (float_recall if isinstance(kind, FloatKind) else knn_recall)(hits, exact)
    serialised = (faiss.serialize_index if isinstance(kind, FloatKind) else faiss.serialize_index_binary)(index)
    size = len(database)
    params = kind_params(kind, dim, size, settings)
    row = CostRow(
        kind=str(kind), size=size, dim=dim, params=" ".join(f"{k}={v}" for k, v in params.items()),
        code_bytes=float(database.shape[1] * database.itemsize), disk_bytes_per_face=serialised.size / size,
        ram_bytes_per_face=max(0, held) / size, build_s=build_s,
        single_ms_median=float(np.median(singles)), single_ms_p99=float(np.percentile(singles, 99)),
        batch_ms_median=float(np.median(batches)), batch_ms_p99=float(np.percentile(batches, 99)),
        qps=settings.batch * len(batches) / (batches.sum() / 1000), recall=recall, batch=settings.batch,
        clock=clock_name, wall_ms_median=float(np.median(walls)),
    )
    return row, hits


def encoding_rate(encode: Callable[[np.ndarray], object], shape: tuple[int, ...], settings: CostSettings,
                  seed: int = 0) -> dict[str, float]:
    """How fast ``encode`` turns uint8 images of ``shape`` (C, H, W) into codes: the median
    time of one image (``settings.queries`` times, at most 50) and images/s in batches of
    ``settings.batch`` (``settings.batches`` of them), on :func:`clock_for`'s clock.

    >>> rate = encoding_rate(lambda x: x.sum(), (1, 2, 2), CostSettings(queries=3, batch=4, batches=2))
    >>> sorted(rate), rate["batch"]
    (['batch', 'images_per_s', 'ms_per_image'], 4.0)
    """
    clock_name, clock = clock_for(settings.threads)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (settings.batch, *shape), dtype=np.uint8)
    encode(images[:1])  # warm-up (lazy initialisation)
    singles = timed(lambda i: encode(images[i % len(images)][None]), min(settings.queries, 50), clock)
    batches = timed(lambda i: encode(images), settings.batches, clock)
    return {"ms_per_image": float(np.median(singles)), "images_per_s": len(images) * len(batches) / (batches.sum() / 1000),
            "batch": float(len(images))}


def measure_sizes(kinds: Sequence[Kind], database: np.ndarray, queries: np.ndarray, dim: int,
                  sizes: Sequence[int], settings: CostSettings, caps: dict[Kind, int],
                  on_row: Callable[[CostRow], None] = lambda row: None) -> list[CostRow]:
    """Every kind at every size up to its cap, on the first ``size`` rows of ``database``
    (nested galleries). The family's exhaustive kind runs first at each size (added when not
    asked for: it is the reference for the recall)."""
    exact_kind = FloatKind.FLAT if database.dtype != np.uint8 else IndexKind.FLAT
    order = [exact_kind, *[k for k in kinds if k != exact_kind]]
    rows = []
    for size in sizes:
        if size > len(database):
            raise ValueError(f"a gallery of {size} faces needs {size} database rows, got {len(database)}")
        exact = None
        for kind in order:
            if size > caps.get(kind, size):
                continue
            row, hits = measure(kind, database[:size], queries, dim, settings, exact)
            exact = hits if kind == exact_kind else exact
            rows.append(row)
            on_row(row)
    return rows
