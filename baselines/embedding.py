"""Floors and the float top line on the embeddings of a registered (pretrained) backbone.

:func:`embedding_methods` gives, for one backbone, the family ``<prefix>-float`` (the float
top line: cosine ranking of the embeddings themselves, :mod:`bench.evaluation.real_valued`),
``<prefix>-lsh``, ``<prefix>-pca-sign``, ``<prefix>-pca-rr`` (PCA, a random orthogonal
rotation, sign) and ``<prefix>-pca-itq``: the floors of :mod:`baselines.lsh` and
:mod:`baselines.itq`, fitted on the training split's embeddings instead of pixels. The
harness computes the embeddings once per backbone and dataset and caches them
(:mod:`bench.training.embeddings`); ``--backbone NAME`` (or ``--set backbone.name=NAME``)
points a family at another registered backbone. Nothing is trained. The float top line
takes no bits: it runs once per asked code length, with the same result, so it stands in
every code length's rows; its ``bytes_per_face`` is the embedding's float32 size (512 for
128 dimensions), the codes' is bits / 8.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, create_model

from baselines.itq import PCAITQ, PCARandomRotation, PCASign
from baselines.lsh import LSH
from bench.api.methods import Encoder, FittedMethod, PartSpec, Ranking, StrictModel


def with_backbone(base: type[StrictModel], backbone: str) -> type[StrictModel]:
    """``base`` plus ``backbone`` (the registered backbone to embed with, default ``backbone``)."""
    return create_model(f"{base.__name__}OnEmbeddings", __base__=base, __module__=__name__,
                        backbone=(PartSpec, Field(default_factory=lambda: PartSpec(name=backbone))))


class EmbeddingFloor(FittedMethod):
    """A non-learned floor (LSH, PCA-sign, PCA + random rotation, PCA-ITQ) fitted on a
    pretrained backbone's embeddings."""

    inputs: ClassVar[Literal["vectors", "images", "embeddings"]] = "embeddings"
    floor: ClassVar[FittedMethod]

    def embedding_backbone(self, config: Any) -> PartSpec:
        return config.backbone

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel) -> Encoder:
        return self.floor.fit(x, y, bits, seed, config)


class CosineTopLine(FittedMethod):
    """The float top line: a pretrained backbone's embeddings ranked by exact cosine distance
    (no code; its bytes per face are the embedding's float32 size)."""

    inputs: ClassVar[Literal["vectors", "images", "embeddings"]] = "embeddings"
    ranking: ClassVar[Ranking] = Ranking.COSINE

    def embedding_backbone(self, config: Any) -> PartSpec:
        return config.backbone

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel) -> Encoder:
        return lambda v: np.asarray(v, dtype=np.float32)


FLOORS: dict[str, FittedMethod] = {"lsh": LSH(), "pca-sign": PCASign(), "pca-rr": PCARandomRotation(),
                                   "pca-itq": PCAITQ()}


def embedding_methods(prefix: str, backbone: str) -> dict[str, FittedMethod]:
    """The float top line and the floors on ``backbone``'s embeddings, named ``<prefix>-float``,
    ``<prefix>-lsh``, ``<prefix>-pca-sign``, ``<prefix>-pca-rr``, ``<prefix>-pca-itq``."""
    top = (f"The float top line: {backbone}'s embeddings ranked by exact cosine distance (no code; "
           "bytes per face: the float32 embedding's size).")
    methods: dict[str, FittedMethod] = {
        f"{prefix}-float": type("CosineTopLineOn", (CosineTopLine,),
                                {"Config": with_backbone(StrictModel, backbone), "__module__": __name__,
                                 "__doc__": top, "name": f"{prefix}-float"})()}
    for name, floor in FLOORS.items():
        what = (type(floor).__doc__ or name).split(":")[0].strip().rstrip(".")
        cls = type(f"{type(floor).__name__}OnEmbeddings", (EmbeddingFloor,),
                   {"Config": with_backbone(floor.Config, backbone), "floor": floor, "__module__": __name__,
                    "name": f"{prefix}-{name}",
                    "__doc__": f"{what}, on {backbone}'s embeddings: a non-learned floor."})
        methods[f"{prefix}-{name}"] = cls()
    return methods
