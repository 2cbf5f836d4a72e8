"""Embeddings of a frozen backbone, computed once and cached, and the parts that train a
hashing head on them.

:func:`dataset_embeddings` builds a registered backbone (any plugin; built under seed 0, in
eval mode, gradients off), passes every image of a dataset through the run's normaliser and
the backbone in float32, and returns its named features ``{name: (N, d)}`` in the dataset's
order. They are kept per process and on disk under ``<cache root>/embeddings/`` (the dataset
cache's root, ``$FACEHASH_BENCH_CACHE``), by a key over the backbone's name and options, the
source of the module that defines it, any file its options name (size and modification
time), the split checksum of the images and the normaliser; so every code length, seed and
method of one invocation, and the next invocation, reuse them.

A frozen-backbone run trains on them: :class:`FeatureTable` is the backbone it trains with
(features in, the same named features out, nothing to train) and :class:`PassThrough` the
normaliser of its inputs (the features are model inputs already). The features travel as
``(N, D, 1, 1)`` float32 "images" (every feature concatenated, in the backbone's order), so
the harness's batching, training step and encoding work on them unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.api.interfaces import Backbone, BuildContext
from bench.api.methods import PartSpec
from bench.api.pluginhost import PluginHost
from bench.config.hashing import stable_hash
from bench.data.cache import cache_root
from bench.data.faces import FaceData
from bench.data.preprocess import Normaliser

Features = dict[str, np.ndarray]
_MEMORY: OrderedDict[str, Features] = OrderedDict()
_MEMORY_ENTRIES = 4


class FeatureTable(Backbone):
    """The backbone of a frozen-backbone run: ``(N, D, 1, 1)`` concatenated features in,
    the named features ``{name: (N, d)}`` out (no parameters).

    >>> table = FeatureTable({"a": 2, "b": 1})
    >>> {k: v.tolist() for k, v in table(torch.tensor([[1.0, 2.0, 3.0]]).view(1, 3, 1, 1)).items()}
    {'a': [[1.0, 2.0]], 'b': [[3.0]]}
    """

    def __init__(self, feature_dims: dict[str, int]) -> None:
        super().__init__()
        self.feature_dims = dict(feature_dims)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(x.flatten(1), list(self.feature_dims.values()), dim=1)
        return dict(zip(self.feature_dims, parts, strict=True))


class PassThrough(Normaliser):
    """The normaliser of feature inputs: they are used as they are (float32, no copy)."""

    def __init__(self) -> None:
        super().__init__("features", np.zeros((0, 1, 1, 1), np.uint8), np.zeros(0, np.int8))

    def fit(self, images: np.ndarray, split: np.ndarray) -> dict:
        return {}

    def transform(self, x: torch.Tensor, part: int) -> torch.Tensor:
        return x


def as_inputs(features: Features) -> np.ndarray:
    """Named features -> the ``(N, D, 1, 1)`` float32 inputs of a :class:`FeatureTable`.

    >>> as_inputs({"a": np.ones((2, 3)), "b": np.zeros((2, 1))}).shape
    (2, 4, 1, 1)
    """
    flat = np.concatenate([np.asarray(v, dtype=np.float32) for v in features.values()], axis=1)
    return np.ascontiguousarray(flat[:, :, None, None])


def cache_key(host: PluginHost, spec: PartSpec, data: FaceData, normaliser: Normaliser) -> str:
    """What the embeddings depend on, hashed (see the module's docstring)."""
    entry, _ = host.backbones.resolve(spec.name)
    factory = getattr(entry.factory, "func", entry.factory)
    try:
        source = hashlib.sha256(Path(inspect.getsourcefile(factory) or "").read_bytes()).hexdigest()
    except (OSError, TypeError):
        source = "no source"
    files = {str(v): [Path(v).stat().st_size, Path(v).stat().st_mtime_ns] for v in spec.options.values()
             if isinstance(v, str) and Path(v).expanduser().is_file()}
    stats = {str(p): [t.tolist() for t in s] for p, s in sorted(normaliser.stats.items())}
    return stable_hash({"backbone": spec.name, "options": spec.options, "source": source, "files": files,
                        "version": entry.version, "data": data.checksum(), "shape": list(data.images.shape),
                        "normaliser": normaliser.kind, "stats": stats})[:24]


def build_frozen(host: PluginHost, spec: PartSpec, data: FaceData) -> Backbone:
    """The registered backbone ``spec`` for ``data``'s images, built under seed 0 (so a
    randomly initialised one is the same in every run), in eval mode, gradients off."""
    ctx = BuildContext(bits=1, num_classes=max(data.num_classes, 1), input_shape=data.image_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        backbone = host.backbones.build(spec.name, ctx, **spec.options)
    return backbone.eval().requires_grad_(False)


@torch.no_grad()
def embed(backbone: torch.nn.Module, data: FaceData, normaliser: Normaliser, device: torch.device,
          batch_size: int = 256) -> Features:
    """Every image of ``data`` through ``normaliser`` (its own split part's statistics) and
    ``backbone``, float32, in the dataset's order."""
    backbone = backbone.to(device)
    out: dict[str, np.ndarray] = {}
    for part in np.unique(data.split).tolist():
        rows = np.flatnonzero(data.split == part)
        for start in range(0, len(rows), batch_size):
            index = rows[start:start + batch_size]
            batch = torch.from_numpy(data.images[index]).to(device)
            features = backbone(normaliser.apply(batch, part))
            features = {"out": features} if isinstance(features, torch.Tensor) else features
            for name, value in features.items():
                if name not in out:
                    out[name] = np.empty((len(data.images), value.shape[1]), dtype=np.float32)
                out[name][index] = value.float().cpu().numpy()
    return out


def dataset_embeddings(host: PluginHost, spec: PartSpec, data: FaceData, normaliser: Normaliser,
                       device: torch.device) -> Features:
    """The backbone ``spec``'s features of every image of ``data`` (see the module's
    docstring): from the process's memory, else the disk cache, else computed and stored."""
    key = cache_key(host, spec, data, normaliser)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    path = cache_root() / "embeddings" / f"{key}.npz"
    features = _read(path)
    if features is None:
        features = embed(build_frozen(host, spec, data), data, normaliser, device)
        _write(path, features)
    _MEMORY[key] = features
    while len(_MEMORY) > _MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)
    return features


def _read(path: Path) -> Features | None:
    try:
        with np.load(path) as stored:
            names = [str(n) for n in stored["__names__"]]
            return {name: stored[f"f{i}"] for i, name in enumerate(names)}
    except (OSError, KeyError, ValueError):
        return None  # absent or unreadable: computed again


def _write(path: Path, features: Features) -> None:
    """Atomically (a temporary file, then a rename); a cache that cannot be written is skipped."""
    payload: dict[str, Any] = {f"f{i}": v for i, v in enumerate(features.values())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, __names__=np.array(list(features)), **payload)
        os.replace(tmp, path)
    except OSError:
        return
