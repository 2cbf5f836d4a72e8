"""A run's gallery index as an artifact of the run: ``index/<kind>/`` holds the faiss file,
the gallery's ids and labels in index order, and ``index.json`` (kind, settings, code length,
build time, and for an approximate kind its recall of the true k nearest on the run's queries,
also logged as the run's metric ``index_<kind>_recall_at_<k>``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from bench.api.errors import BenchError
from bench.retrieval.index import (
    EXACT_KINDS,
    Hits,
    IndexKind,
    IndexParams,
    apply_search_params,
    build_index,
    knn_recall,
    padded_bits,
    resolve_params,
    search,
)
from bench.retrieval.runs import RunHandle
from bench.tracking.client import Tracker

INDEX_DIR = "index"
INDEX_FILE, IDS_FILE, CARD_FILE = "index.faissbin", "gallery.npz", "index.json"


@dataclass
class StoredIndex:
    """A gallery index loaded back: the faiss index and, per position, image id and label."""

    index: faiss.IndexBinary
    kind: IndexKind
    bits: int
    ids: np.ndarray
    labels: np.ndarray
    card: dict[str, Any]


def measure_recall(codes: Any, index: faiss.IndexBinary, kind: IndexKind, k: int) -> tuple[float, Hits]:
    """Recall of the true ``k`` nearest (against exhaustive search) for the run's queries."""
    exact = search(build_index(codes.gallery, IndexKind.FLAT), IndexKind.FLAT, codes.query, k)
    hits = exact if kind in EXACT_KINDS else search(index, kind, codes.query, k)
    return knn_recall(hits, exact), hits


def build_run_index(handle: RunHandle, tracker: Tracker, kind: IndexKind, params: IndexParams,
                    recall_k: int) -> dict[str, Any]:
    """Build the ``kind`` index of the run's gallery codes, store it as the run's artifact
    ``index/<kind>`` (replacing an earlier one) and return its card."""
    codes = handle.codes
    start = time.perf_counter()
    index = build_index(codes.gallery, kind, params)
    seconds = time.perf_counter() - start
    params = resolve_params(kind, codes.bits, len(codes.gallery), params)
    recall, _ = measure_recall(codes, index, kind, recall_k)
    card = {"kind": kind.value, "bits": codes.bits, "faiss_d": padded_bits(codes.bits),
            "padding": (f"{padded_bits(codes.bits) - codes.bits} zero bits appended to every code (faiss needs a "
                        "multiple of 8; distances unchanged)") if codes.bits % 8 else "none",
            "gallery_size": len(codes.gallery), "params": params.as_dict(), "build_seconds": seconds,
            "exact": kind in EXACT_KINDS, "recall_k": recall_k, "recall": recall, "queries": len(codes.query)}
    folder = handle.folder / "new-index" / kind.value
    folder.mkdir(parents=True, exist_ok=True)
    faiss.write_index_binary(index, str(folder / INDEX_FILE))
    np.savez(folder / IDS_FILE, ids=codes.gallery_ids, labels=codes.gallery_labels)
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2))
    tracker.log_artifacts(handle.run_id, folder, artifact_path=f"{INDEX_DIR}/{kind.value}")
    tracker.log_metrics(handle.run_id, {f"index_{kind.value}_recall_at_{recall_k}": recall,
                                        f"index_{kind.value}_build_seconds": seconds})
    return card


def load_run_index(handle: RunHandle, kind: IndexKind) -> StoredIndex:
    """The run's stored ``kind`` index; a one-line error when it has none."""
    stored = {a.path for a in handle.reader.client.list_artifacts(handle.run_id, INDEX_DIR)}
    if f"{INDEX_DIR}/{kind.value}" not in stored:
        raise BenchError(f"run '{handle.name}' has no {kind.value} index; build it with "
                         f"`bench index build {handle.name} --kind {kind.value}`")
    folder = handle.reader.download(handle.run_id, f"{INDEX_DIR}/{kind.value}", handle.folder / "loaded")
    card = json.loads((folder / CARD_FILE).read_text())
    index = faiss.read_index_binary(str(folder / INDEX_FILE))
    apply_search_params(index, kind, IndexParams(**card["params"]))
    with np.load(folder / IDS_FILE) as gallery:
        return StoredIndex(index, kind, int(card["bits"]), gallery["ids"], gallery["labels"], card)


def index_for(handle: RunHandle, kind: IndexKind) -> StoredIndex:
    """The run's stored ``kind`` index, else one built now from its gallery codes (not stored)."""
    stored = {a.path for a in handle.reader.client.list_artifacts(handle.run_id, INDEX_DIR)}
    if f"{INDEX_DIR}/{kind.value}" in stored:
        return load_run_index(handle, kind)
    codes = handle.codes
    params = resolve_params(kind, codes.bits, len(codes.gallery))
    card = {"kind": kind.value, "bits": codes.bits, "gallery_size": len(codes.gallery), "params": params.as_dict(),
            "stored": False}
    return StoredIndex(build_index(codes.gallery, kind, params), kind, codes.bits, codes.gallery_ids,
                       codes.gallery_labels, card)
