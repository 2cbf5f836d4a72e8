"""``hashnet``: HashNet, Deep Learning to Hash by Continuation (Cao, Long, Wang, Yu;
ICCV 2017) as ``swuxyj/DeepHash-pytorch`` ``HashNet.py`` implements it (``get_config``,
``HashNetLoss``, the mini-batch version of the current reference).

Parts: the shared face backbone -> head ``fc`` without activation (the reference's
``Linear(4096, K)``); loss ``hashnet-pairwise``: the class-balanced pairwise likelihood of
``tanh(scale * u)`` inside the batch, ``alpha = 0.1``, with ``scale = sqrt(epoch // 20 + 1)``
over the published 150 epochs (``step_continuation: 20``), here at the same fractions of the
protocol's budget (``schedule=epochs``: every 20 epochs, as released). RMSprop lr 1e-5,
weight decay 1e-5 on every parameter, no schedule, batch 64, shuffled; evaluated every 15
epochs (here: on validation). The code is ``sign(u)`` (= the sign of the tanh).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bench.api.methods import (
    DeepMethodConfig,
    LossTerm,
    OptimizerSpec,
    PartSpec,
    Reference,
    StrictModel,
    TrainingSpec,
)
from bench.api.search import Dimension, log_uniform
from plugins.backbones.defaults import face_backbone
from plugins.deephash_pytorch import REFERENCE, DeepHashPort

PUBLISHED_EPOCHS = 150

#: Differences from the reference beyond plugins.deephash_pytorch.COMMON_DEVIATIONS.
FIXED_DEVIATIONS: dict[str, str] = {
    "continuation": (
        "the scale steps every 20/150 of the protocol's step budget (schedule=budget), equal to "
        "the reference's every 20 epochs at its 150; --set loss.hashnet-pairwise.schedule=epochs "
        "steps every 20 epochs as released"
    ),
    "label_similarity": "the reference's s_ij = [y_i . y_j > 0] on one-hot labels is 'same identity' here",
    "no_negative_pairs": (
        "a batch of one identity has no dissimilar pair: the reference's unused S/S0 is a division "
        "by zero, here S0 is clamped to 1 (the weight is unused either way)"
    ),
}


class HashNetConfig(DeepMethodConfig):
    """HashNet's hyperparameters; defaults are the reference's."""

    backbone: PartSpec = Field(default_factory=face_backbone)
    head: PartSpec = Field(default_factory=lambda: PartSpec(name="fc", options={"activation": "none"}))
    losses: list[LossTerm] = Field(
        default_factory=lambda: [LossTerm(name="hashnet-pairwise", options={
            "alpha": 0.1, "step_continuation": 20, "published_epochs": PUBLISHED_EPOCHS, "schedule": "budget"})]
    )
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(name="rmsprop", lr=1e-5, weight_decay=1e-5, decay_scope="all", momentum=0.0)
    )
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(batch_size=64, sampler="shuffle", selection="val_map", validate_every=15)
    )  # epochs: the protocol's budget (published: 150)


class HashNet(DeepHashPort):
    """HashNet (ICCV 2017), faithful to DeepHash-pytorch's HashNet.py."""

    name: ClassVar[str] = "hashnet"
    reference: ClassVar[Reference] = Reference(REFERENCE, epochs=PUBLISHED_EPOCHS)
    fixed_deviations: ClassVar[dict[str, str]] = FIXED_DEVIATIONS
    Config: ClassVar[type[StrictModel]] = HashNetConfig
    # tuning (bench tune): around the reference's lr 1e-5 and alpha 0.1
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-6, 1e-3),
        "loss.hashnet-pairwise.alpha": log_uniform(1e-2, 1.0),
    }
