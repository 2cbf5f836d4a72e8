"""``timm-pca-itq`` and ``timm-pca-sign``: the training-free floors on frozen
pretrained features.

A frozen timm backbone (``backbone.name``, ``timm:<model>``; ``--backbone timm:NAME``)
maps the protocol-normalised images, resized bilinearly to the model's pretrained input
size (``backbone.input_size`` overrides it), to its pooled features; PCA-ITQ or PCA-sign
(:mod:`baselines.itq`) is fitted on the training split's features and encodes every
split's features. Weights: a local file (``--set backbone.weights=PATH``) or timm's
pretrained weights from the Hugging Face cache or hub; offline without them the run stops
with one line (:func:`plugins.backbones.frozen.load_frozen_timm`). Nothing is trained.
The images keep the protocol's normalisation (per-channel training mean and std), not the
model's ImageNet mean and std.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from baselines.itq import PCAITQ, PCAITQConfig, PCASign, PCASignConfig
from bench.api.methods import Encoder, FittedMethod, StrictModel
from plugins.backbones.frozen import FrozenFeatures, check_weights


class FrozenBackboneSpec(StrictModel):
    """The frozen backbone: a timm model, its weights (None: the hub or its cache), the
    input size (None: the model's pretrained one) and the feature batch size."""

    name: str = "timm:resnet18"
    weights: str | None = None
    input_size: int | None = Field(None, ge=8)
    batch_size: int = Field(64, ge=1)


class PretrainedITQConfig(PCAITQConfig):
    """PCA-ITQ's settings plus the frozen backbone."""

    backbone: FrozenBackboneSpec = Field(default_factory=FrozenBackboneSpec)


class PretrainedSignConfig(PCASignConfig):
    """The frozen backbone (PCA-sign has no settings of its own)."""

    backbone: FrozenBackboneSpec = Field(default_factory=FrozenBackboneSpec)


class PretrainedFloor(FittedMethod):
    """A non-learned floor fitted on a frozen pretrained backbone's pooled features."""

    inputs: ClassVar[Literal["vectors", "images"]] = "images"
    floor: ClassVar[FittedMethod]

    def resolve(self, config: StrictModel) -> StrictModel:
        """The config unchanged, once its backbone's weights are known to be available (else one
        BenchError, before any run starts)."""
        check_weights(config.backbone.name, config.backbone.weights)
        return config

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel) -> Encoder:
        spec = config.backbone
        features = FrozenFeatures(spec.name, spec.weights, spec.input_size, spec.batch_size, in_chans=x.shape[1])
        encode = self.floor.fit(features(x), y, bits, seed, config)
        return lambda images: encode(features(images))

    def tags(self, config: StrictModel) -> dict[str, str]:
        """The backbone and where its weights came from (a local file's SHA-256, or the hub)."""
        weights = config.backbone.weights
        tags = {"pretrained.backbone": config.backbone.name, "pretrained.weights": weights or "timm pretrained (hub)"}
        if weights is not None and Path(weights).expanduser().is_file():
            tags["pretrained.weights_sha256"] = hashlib.sha256(Path(weights).expanduser().read_bytes()).hexdigest()
        return tags


class PretrainedITQ(PretrainedFloor):
    """PCA-ITQ on a frozen pretrained timm backbone's pooled features: a training-free floor."""

    name: ClassVar[str] = "timm-pca-itq"
    Config = PretrainedITQConfig
    floor = PCAITQ()


class PretrainedSign(PretrainedFloor):
    """PCA-sign on a frozen pretrained timm backbone's pooled features: a training-free floor."""

    name: ClassVar[str] = "timm-pca-sign"
    Config = PretrainedSignConfig
    floor = PCASign()
