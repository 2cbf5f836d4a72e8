"""The identity-disjoint (open-set) protocol: a seeded partition of a dataset's identities
into training identities (``train`` and ``val`` images) and retrieval identities
(``gallery`` and ``query`` images), applied to a loaded :class:`FaceData`.

The partition depends only on the sorted identity names, the sizes and the split seed (a
numpy ``default_rng(seed)`` permutation), so every run and every process draws the same
one. Labels are renumbered: training identities ``0..T-1`` (what a classifier sees), then
retrieval identities ``T..C-1``, each group in the order of its names.
"""

from __future__ import annotations

import numpy as np

from bench.api.errors import BenchError
from bench.config.protocol import OpenSetSpec
from bench.data.faces import GALLERY, QUERY, TRAIN, VAL, FaceData

DEFAULT_RETRIEVAL_SHARE = 0.3  # of the identities, when OpenSetSpec.retrieval_identities is None


def retrieval_count(identities: int, spec: OpenSetSpec) -> int:
    """How many identities are retrieval identities (at least 1 and at most ``identities - 1``).

    >>> retrieval_count(40, OpenSetSpec()), retrieval_count(40, OpenSetSpec(retrieval_identities=8))
    (12, 8)
    """
    count = spec.retrieval_identities
    if count is None:
        count = min(max(1, round(DEFAULT_RETRIEVAL_SHARE * identities)), identities - 1)
    if not 1 <= count < identities:
        raise BenchError(
            f"open-set split: {count} retrieval identities of {identities}; "
            f"set protocol.open_set.retrieval_identities between 1 and {identities - 1}"
        )
    return count


def partition_identities(names: list[str], spec: OpenSetSpec, seed: int) -> tuple[list[str], list[str]]:
    """(training, retrieval) identity names, each sorted: a seeded draw from the sorted names.

    >>> train, retrieval = partition_identities([f"s{i}" for i in range(10)], OpenSetSpec(), 0)
    >>> len(train), len(retrieval), sorted(train + retrieval) == sorted(f"s{i}" for i in range(10))
    (7, 3, True)
    """
    ordered = sorted(names)
    if len(set(ordered)) != len(ordered):
        raise BenchError("open-set split: identity names repeat; give every identity a unique name")
    chosen = np.random.default_rng(seed).permutation(len(ordered))[: retrieval_count(len(ordered), spec)]
    retrieval = sorted(ordered[i] for i in chosen)
    picked = set(retrieval)
    return [n for n in ordered if n not in picked], retrieval


def open_set_split(data: FaceData, spec: OpenSetSpec, seed: int) -> FaceData:
    """``data`` (any split) re-split by identity: training identities give ``spec.val``
    images each to ``val`` and the rest to ``train``; retrieval identities give
    ``spec.queries`` images each to ``query`` and the rest to ``gallery`` (images drawn in a
    seeded order). ``meta['open_set']`` records the partition."""
    train_ids, retrieval_ids = partition_identities(list(data.identities), spec, seed)
    names = train_ids + retrieval_ids
    new_label = {name: i for i, name in enumerate(names)}
    remap = np.asarray([new_label[str(n)] for n in data.identities], dtype=np.int64)
    labels = remap[np.asarray(data.labels)]
    rng = np.random.default_rng([seed, 1])  # its own stream: the image draw never moves the partition
    split = np.empty(len(labels), dtype=np.int8)
    for label, name in enumerate(names):
        idx = np.flatnonzero(labels == label)
        held, keep = (spec.val, TRAIN) if label < len(train_ids) else (spec.queries, GALLERY)
        if len(idx) < held + 1:
            role = "training" if keep == TRAIN else "retrieval"
            raise BenchError(
                f"open-set split of '{data.name}': {role} identity {name} has {len(idx)} image(s), "
                f"needs at least {held + 1}; lower protocol.open_set.{'val' if keep == TRAIN else 'queries'}"
            )
        idx = idx[rng.permutation(len(idx))]
        split[idx] = keep
        split[idx[:held]] = VAL if keep == TRAIN else QUERY
    meta = {**data.meta, "open_set": {"seed": seed, "training_identities": train_ids,
                                      "retrieval_identities": retrieval_ids}}
    return FaceData(data.name, data.images, labels, split, names, meta=meta)
