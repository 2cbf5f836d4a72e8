"""The protocol's dataset for a run: read through the cache, resized to the protocol's input
size, split by the protocol's split rule and seed, and kept once per process (a worker that
executes many runs loads each dataset once): at most ``LOADED_LIMIT`` datasets, the least
recently used dropped first, each read-only (a run cannot change what the next one sees) and
dropped when its source files change (:mod:`bench.data.sources`).

``closed-set`` passes the split seed to the dataset as its ``split_seed`` option (the
per-identity image split); ``open-set`` loads the dataset as it is and re-splits it by
identity (:func:`bench.data.openset.open_set_split`).
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import numpy as np

from bench.api.errors import BenchError
from bench.config.hashing import stable_hash
from bench.config.protocol import ProtocolConfig
from bench.data.cache import load_dataset
from bench.data.faces import FaceData
from bench.data.openset import open_set_split
from bench.data.preprocess import resize_uint8
from bench.data.sources import Stamp, source_root, stamp

LOADED_LIMIT = 4  # datasets kept per process (a sweep over split seeds holds one per split)
_LOADED: dict[str, tuple[FaceData, Stamp]] = {}  # in use order, the most recent last


def load_data(host: Any, protocol: ProtocolConfig, data_root: str | None) -> FaceData:
    """The protocol's dataset, read through the cache (built and cached on first use),
    at the protocol's input size."""
    root = Path(data_root).expanduser() if data_root else None
    data = load_dataset(host, protocol.dataset, root, dataset_options(host, protocol))
    identities = len(np.unique(data.labels))
    if identities < 2:
        raise BenchError(f"dataset '{protocol.dataset}' holds {identities} identity; retrieval by identity needs "
                         "at least two (every gallery item would be relevant); use a dataset with more identities")
    return apply_split(at_input_size(data, protocol.input_size), protocol)


def at_input_size(data: FaceData, size: int) -> FaceData:
    """``data`` with its images at ``size`` x ``size``: ``data`` itself when they have that
    size, else a new :class:`FaceData` (``data`` is left as it is): what runs see, and so what
    their split checksum is computed on."""
    if data.images.shape[2:] == (size, size):
        return data
    return dataclasses.replace(data, images=resize_uint8(data.images, size))


def dataset_options(host: Any, protocol: ProtocolConfig) -> dict[str, Any]:
    """The dataset's options for ``protocol``: closed-set adds the split seed as the
    dataset's ``split_seed`` (the dataset's own default split for seed 0)."""
    options = dict(protocol.dataset_options)
    if protocol.split != "closed-set" or protocol.split_seed == 0:
        return options
    factory = host.datasets.resolve(protocol.dataset)[0].factory
    if "split_seed" not in inspect.signature(factory).parameters:
        raise BenchError(f"dataset '{protocol.dataset}' has a fixed split and no split_seed option; "
                         "drop --split-seeds or use --split open-set")
    if "split_seed" in options:
        raise BenchError("both --split-seeds and dataset.split_seed given; keep one of them")
    return {**options, "split_seed": protocol.split_seed}


def apply_split(data: FaceData, protocol: ProtocolConfig) -> FaceData:
    """``data`` under the protocol's split rule: as it is (closed-set) or re-split by identity."""
    if protocol.split == "open-set":
        return open_set_split(data, protocol.open_set, protocol.split_seed)
    return data


def data_key(protocol: ProtocolConfig, data_root: str | None) -> str:
    """What identifies a loaded dataset (not the method, bits or seed of a run)."""
    split = [protocol.split, protocol.split_seed, protocol.open_set.model_dump(mode="json")]
    return stable_hash([protocol.dataset, protocol.dataset_options, protocol.input_size, data_root, split])


def read_only(data: FaceData) -> FaceData:
    """``data`` with read-only arrays (views; memory-mapped ones already are)."""
    views = {}
    for name in ("images", "labels", "split"):
        view = getattr(data, name).view()
        view.flags.writeable = False
        views[name] = view
    frozen = dataclasses.replace(data, **views)
    frozen.__dict__.update(_checksum=data._checksum, _pool_checksum=data._pool_checksum)  # same content
    return frozen


def dataset_for(host: Any, protocol: ProtocolConfig, data_root: str | None) -> FaceData:
    """The dataset of ``protocol``, loaded once per process (reloaded when its source files
    changed: their sizes and modification times are compared at each call)."""
    key = data_key(protocol, data_root)
    sources = stamp(source_root(protocol.dataset, data_root))
    kept = _LOADED.pop(key, None)
    if kept is None or kept[1] != sources:
        kept = (read_only(load_data(host, protocol, data_root)), sources)
    _LOADED[key] = kept  # now the most recently used
    while len(_LOADED) > LOADED_LIMIT:
        del _LOADED[next(iter(_LOADED))]
    return kept[0]
