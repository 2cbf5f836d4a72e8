"""The protocol's dataset for a run: read through the cache, resized to the protocol's input
size, and kept once per process (a worker that executes many runs loads each dataset once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.api.errors import BenchError
from bench.config.hashing import stable_hash
from bench.config.protocol import ProtocolConfig
from bench.data.cache import load_dataset
from bench.data.faces import FaceData
from bench.data.preprocess import resize_uint8

_LOADED: dict[str, FaceData] = {}


def load_data(host: Any, protocol: ProtocolConfig, data_root: str | None) -> FaceData:
    """The protocol's dataset, read through the cache (built and cached on first use),
    at the protocol's input size."""
    root = Path(data_root).expanduser() if data_root else None
    data = load_dataset(host, protocol.dataset, root, protocol.dataset_options)
    identities = len(np.unique(data.labels))
    if identities < 2:
        raise BenchError(f"dataset '{protocol.dataset}' holds {identities} identity; retrieval by identity needs "
                         "at least two (every gallery item would be relevant); use a dataset with more identities")
    return at_input_size(data, protocol.input_size)


def at_input_size(data: FaceData, size: int) -> FaceData:
    """``data`` with its images resized to ``size`` x ``size`` (in place; unchanged when they
    have that size): what runs see, and so what their split checksum is computed on."""
    if data.images.shape[2:] != (size, size):
        data.images = resize_uint8(data.images, size)
    return data


def data_key(protocol: ProtocolConfig, data_root: str | None) -> str:
    """What identifies a loaded dataset (not the method, bits or seed of a run)."""
    return stable_hash([protocol.dataset, protocol.dataset_options, protocol.input_size, data_root])


def dataset_for(host: Any, protocol: ProtocolConfig, data_root: str | None) -> FaceData:
    """The dataset of ``protocol``, loaded once per process."""
    key = data_key(protocol, data_root)
    if key not in _LOADED:
        _LOADED[key] = load_data(host, protocol, data_root)
    return _LOADED[key]
