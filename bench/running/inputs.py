"""What a run's model or fitted method reads: the dataset's images through the run's
normaliser, or the features of a frozen backbone (computed once and cached,
:mod:`bench.training.embeddings`).

A deep run on a frozen pretrained backbone (``protocol.pretrained`` with mode ``frozen``)
trains its head and loss on the backbone's features: :func:`deep_inputs` gives them as
``(N, D, 1, 1)`` float32 samples with a pass-through normaliser and a
:class:`~bench.training.embeddings.FeatureTable` backbone, and no augmentation (the features
are fixed: a flip asked for is recorded as a deviation instead). A fitted method with
``inputs = "embeddings"`` is fitted on the features of its own backbone
(:func:`embedding_vectors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.api.interfaces import Backbone
from bench.config.protocol import BackboneMode
from bench.data.faces import FaceData
from bench.data.preprocess import Normaliser
from bench.running.identity import input_pipeline
from bench.running.prepared import DeepRun, FittedRun, PreparedRun
from bench.running.views import backbone_view
from bench.tracking import tags as T
from bench.training.embeddings import FeatureTable, PassThrough, as_inputs, dataset_embeddings


@dataclass
class RunInputs:
    """The samples of every split part, in the dataset's order, with what reads them."""

    samples: Any  # uint8 images (N, C, H, W) or float32 features (N, D, 1, 1)
    labels: np.ndarray
    split: np.ndarray
    normaliser: Normaliser
    augmentation: str
    backbone: Backbone | None = None  # trained with instead of the config's (a FeatureTable when frozen)
    tags: dict[str, str] = field(default_factory=dict)

    def part(self, which: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples and labels of one split part."""
        mask = self.split == which
        return self.samples[mask], self.labels[mask]


def frozen(run: DeepRun) -> bool:
    """Whether ``run`` is a deep run on a frozen pretrained backbone."""
    pretrained = run.spec.protocol.pretrained
    return pretrained is not None and pretrained.mode is BackboneMode.FROZEN


def view(run: PreparedRun, backbone: str, normaliser: Normaliser) -> tuple[FaceData, Normaliser]:
    """The images ``backbone`` reads for the run and their normaliser (the run's own when the
    backbone expects nothing particular; :mod:`bench.running.views`)."""
    data, name = backbone_view(run.host, run.spec.protocol, run.spec.data_root, backbone, run.data, normaliser.kind)
    if data is run.data:
        return data, normaliser
    return data, run.host.normalisers.build(name, data.images, data.split)


def deep_inputs(run: DeepRun, normaliser: Normaliser) -> RunInputs:
    """A deep run's inputs: the images (those its pretrained backbone reads, fine-tuned), or
    the frozen backbone's features."""
    _, augmentation = input_pipeline(run.spec.protocol, run.config)
    pretrained = run.spec.protocol.pretrained
    data = run.data
    if pretrained is not None:
        data, normaliser = view(run, pretrained.backbone, normaliser)
    if not frozen(run):
        return RunInputs(data.images, data.labels, data.split, normaliser, augmentation)
    features = dataset_embeddings(run.host, run.config.backbone, data, normaliser, run.device)
    tags = {} if augmentation == "none" else {
        f"{T.DEVIATION_PREFIX}augmentation": f"{augmentation} not applied: the frozen backbone's features are fixed"}
    dims = {name: int(value.shape[1]) for name, value in features.items()}
    return RunInputs(as_inputs(features), data.labels, data.split, PassThrough(), "none", FeatureTable(dims), tags)


def embedding_vectors(run: FittedRun, normaliser: Normaliser) -> np.ndarray:
    """The features (every feature concatenated, (N, D) float32, the dataset's order) of the
    backbone a fitted method on embeddings names."""
    spec = run.method.embedding_backbone(run.config)
    if spec is None:
        raise TypeError(f"method '{run.spec.method}' has inputs 'embeddings' but names no backbone")
    data, normaliser = view(run, spec.name, normaliser)
    features = dataset_embeddings(run.host, spec, data, normaliser, run.device)
    return as_inputs(features)[:, :, 0, 0]
