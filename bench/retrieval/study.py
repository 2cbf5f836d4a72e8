"""A run's retrieval-cost study: grow its gallery with distractors from its own code
distribution, measure every index kind at every size (:mod:`bench.retrieval.cost`), the float
top line beside it, and summarise the result as a JSON table and as run metrics
(``cost_<kind>_<size>_<what>``, e.g. ``cost_flat_1e6_query_ms``)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.retrieval.cost import (
    DEFAULT_CAPS,
    CostRow,
    CostSettings,
    FloatKind,
    Kind,
    measure_sizes,
    peak_rss_bytes,
)
from bench.retrieval.distractors import CodeModel, FloatModel, normalise
from bench.retrieval.index import IndexKind, padded_bits
from bench.tracking.cost_metrics import (
    BYTES_PER_FACE,
    ENCODE_IMAGES_PER_S,
    ENCODE_MS,
    FLOAT_BYTES_PER_FACE,
    cost_metric,
    face_bytes,
)

SIZES = (10**4, 10**5, 10**6, 10**7)
RESULTS_FILE = "retrieval_cost.json"
DISTRACTORS = ("distractor identities are uniform crossovers of two gallery identity centres (majority bits); "
               "a distractor face flips each bit of its centre with that bit's gallery flip rate; "
               "gallery's median images per identity")


@dataclass(frozen=True)
class StudyPlan:
    """What to measure."""

    sizes: tuple[int, ...] = SIZES
    kinds: tuple[IndexKind, ...] = tuple(IndexKind)
    float_kinds: tuple[FloatKind, ...] = tuple(FloatKind)
    float_dim: int = 128
    caps: dict[Kind, int] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    settings: CostSettings = CostSettings()
    seed: int = 0


@dataclass
class StudyResult:
    """Every row measured, with what a reader needs to trust it."""

    bits: int
    gallery: int
    queries: int
    k: int
    threads: int
    rows: list[dict]
    machine: dict[str, str]
    distractors: str
    floats: str
    skipped: list[str]
    bit_means: dict[str, list[float]]  # gallery vs distractors, per bit
    peak_rss_bytes: int
    encoding: dict[str, float] | None = None  # cost.encoding_rate of the run's stored encoder
    encoding_note: str = ""  # why there is none
    dim: int = 0  # a float run's embedding dimensions (bits is then 0); 0 for a code run

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> StudyResult:
        return cls(**json.loads(text))

    def metrics(self) -> dict[str, float]:
        """The rows as run metrics: ``cost_bytes_per_face`` (:func:`face_bytes`: bits / 8 of a code,
        4 per dimension of a float run's embedding, as the run's ``bytes_per_face``),
        ``cost_float_bytes_per_face``, and per kind and size ``query_ms`` (single-query median),
        ``p99_ms``, ``qps``, ``build_s``, ``ram_bytes_per_face`` and ``recall`` (approximate kinds).

        >>> r = StudyResult(48, 1, 1, 10, 1, [{"kind": "flat", "size": 10**6, "single_ms_median": 4.0, "single_ms_p99": 5.0,
        ...     "qps": 9.0, "build_s": 0.1, "ram_bytes_per_face": 6.0, "recall": None, "code_bytes": 6.0}],
        ...     {}, "", "", [], {}, 0)
        >>> r.metrics()["cost_flat_1e6_query_ms"], r.metrics()["cost_bytes_per_face"]
        (4.0, 6.0)
        """
        out = {BYTES_PER_FACE: face_bytes(self.bits, self.dim)}
        columns = {"query_ms": "single_ms_median", "p99_ms": "single_ms_p99", "qps": "qps", "build_s": "build_s",
                   "ram_bytes_per_face": "ram_bytes_per_face", "recall": "recall"}
        for row in self.rows:
            out.update({cost_metric(row["kind"], row["size"], what): row[column] for what, column in columns.items()
                        if row[column] is not None})
            if row["kind"] == FloatKind.FLAT:
                out[FLOAT_BYTES_PER_FACE] = float(row["code_bytes"])  # 4 bytes per dimension
        if self.encoding:
            out.update({ENCODE_IMAGES_PER_S: self.encoding["images_per_s"], ENCODE_MS: self.encoding["ms_per_image"]})
        return out


def merged(old: StudyResult, new: StudyResult) -> StudyResult:
    """``new`` with the rows of ``old`` it did not measure again (same kind and size) kept
    before its own, as a run's results file accumulates `bench cost` calls.

    >>> a = StudyResult(48, 1, 1, 10, 1, [{"kind": "flat", "size": 1}, {"kind": "flat", "size": 2}], {}, "", "", [], {}, 5)
    >>> b = StudyResult(48, 1, 1, 10, 1, [{"kind": "flat", "size": 2, "new": 1}], {}, "", "", [], {}, 3)
    >>> [r.get("new") for r in merged(a, b).rows], merged(a, b).peak_rss_bytes
    ([None, 1], 5)
    """
    fresh = {(r["kind"], r["size"]) for r in new.rows}
    kept = [r for r in old.rows if (r["kind"], r["size"]) not in fresh] if old.bits == new.bits else []
    return replace(new, rows=kept + new.rows, peak_rss_bytes=max(old.peak_rss_bytes, new.peak_rss_bytes))


def machine() -> dict[str, str]:
    """The CPU (``/proc/cpuinfo``'s model name), its core count and faiss's version."""
    import os

    import faiss

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": name, "cores": str(os.cpu_count()), "faiss": faiss.__version__}


def bit_means(gallery01: np.ndarray, distractors: np.ndarray, bits: int) -> dict[str, list[float]]:
    """Per-bit share of ones in the gallery and in (a sample of) the packed distractors."""
    sample = np.unpackbits(distractors[: 10**5], axis=1, count=bits)
    return {"gallery": gallery01.mean(axis=0).round(4).tolist(), "distractors": sample.mean(axis=0).round(4).tolist()}


def run_study(gallery: np.ndarray, labels: np.ndarray, queries: np.ndarray, bits: int, plan: StudyPlan,
              on_row: Callable[[CostRow], None] = lambda row: None,
              embeddings: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> StudyResult:
    """Measure ``plan`` for packed ``gallery`` codes (with identity ``labels``) and packed
    ``queries`` of ``bits`` bits. ``embeddings`` = (gallery, labels, queries) float vectors for
    the float top line; without them a ``float_dim``-D set modelled on the codes stands in."""
    gallery01 = np.unpackbits(gallery, axis=1, count=bits)
    top = max(plan.sizes)
    model = CodeModel.fit(gallery01, labels)
    database = np.concatenate([gallery, model.packed(max(0, top - len(gallery)), plan.seed)])[:top]
    floats_on = plan.float_kinds if plan.float_dim else ()
    skipped = [f"{kind} above {plan.caps[kind]:,} faces" for kind in (*plan.kinds, *floats_on)
               if kind in plan.caps and top > plan.caps[kind]]
    rows = measure_sizes(plan.kinds, database, queries, padded_bits(bits), plan.sizes, plan.settings, plan.caps, on_row)
    means = bit_means(gallery01, database[len(gallery):], bits)
    del database
    floats = "none"
    if floats_on:
        float_top = min(top, max(plan.caps.get(k, top) for k in plan.float_kinds))
        if embeddings is None:
            fmodel = FloatModel.modelled_on(model, plan.float_dim, plan.seed)
            vectors, float_queries = fmodel.vectors(float_top, plan.seed + 1), fmodel.vectors(len(queries), plan.seed + 2)
            floats = (f"{plan.float_dim}-D unit vectors modelled on the codes (a Gaussian per identity, within/between "
                      "spread from the bit flip rates): a stand-in for a network's embeddings")
        else:
            vectors, float_queries = grown_embeddings(*embeddings, float_top, plan.seed)
            floats = FLOAT_DISTRACTORS
        sizes = [s for s in plan.sizes if s <= float_top]
        rows += measure_sizes(plan.float_kinds, vectors, float_queries, vectors.shape[1], sizes, plan.settings,
                              plan.caps, on_row)
    return StudyResult(bits, len(gallery), len(queries), plan.settings.k, plan.settings.threads, [r.as_dict() for r in rows], machine(), DISTRACTORS, floats,
                       skipped, means, peak_rss_bytes())


FLOAT_DISTRACTORS = ("the run's own embeddings, L2-normalised (inner product = cosine), grown with distractors from "
                     "their model: distractor identity centres are uniform crossovers (per dimension) of two gallery "
                     "identity centres, a distractor face is its centre plus N(0, diag(s^2)) with s the gallery's "
                     "per-dimension within-identity spread, renormalised; gallery's median images per identity")


def grown_embeddings(gallery: np.ndarray, labels: np.ndarray, queries: np.ndarray, size: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The normalised ``gallery`` embeddings grown to ``size`` rows with distractors of the
    :class:`FloatModel` fitted on them (normalised too), and the normalised ``queries``."""
    gallery = normalise(gallery)
    model = FloatModel.fit(gallery, labels)
    grown = model.vectors(max(0, size - len(gallery)), seed)
    return np.concatenate([gallery, grown])[:size], normalise(queries)


def run_float_study(gallery: np.ndarray, labels: np.ndarray, queries: np.ndarray, plan: StudyPlan,
                    on_row: Callable[[CostRow], None] = lambda row: None) -> StudyResult:
    """Measure the float kinds of ``plan`` (IndexFlatIP, IndexHNSWFlat) on a float run's real
    (N, D) ``gallery`` embeddings with identity ``labels`` and its ``queries``, the gallery grown
    with distractors from its own embedding model (:data:`FLOAT_DISTRACTORS`)."""
    top = max(plan.sizes)
    float_top = min(top, max(plan.caps.get(k, top) for k in plan.float_kinds))
    skipped = [f"{kind} above {plan.caps[kind]:,} faces" for kind in plan.float_kinds
               if kind in plan.caps and top > plan.caps[kind]]
    vectors, float_queries = grown_embeddings(gallery, labels, queries, float_top, plan.seed)
    sizes = [s for s in plan.sizes if s <= float_top]
    rows = measure_sizes(plan.float_kinds, vectors, float_queries, vectors.shape[1], sizes, plan.settings,
                         plan.caps, on_row)
    means = {"gallery": vectors[:len(gallery)].mean(axis=0).round(4).tolist(),  # per dimension
             "distractors": vectors[len(gallery):len(gallery) + 10**5].mean(axis=0).round(4).tolist()
             if len(vectors) > len(gallery) else []}
    return StudyResult(0, len(gallery), len(queries), plan.settings.k, plan.settings.threads, [r.as_dict() for r in rows],
                       machine(), FLOAT_DISTRACTORS, f"this run's own {vectors.shape[1]}-D embeddings (the real top line)",
                       skipped, means, peak_rss_bytes(),
                       dim=vectors.shape[1])
