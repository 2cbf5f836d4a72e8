"""``dpsh``: Deep Pairwise-Supervised Hashing (Li, Wang, Kang; IJCAI 2016) as
``swuxyj/DeepHash-pytorch`` ``DPSH.py`` implements it (``get_config``, ``DPSHLoss``).

Parts: the shared face backbone -> head ``fc`` without activation (the reference's
``Linear(4096, K)`` hash layer, PyTorch init); loss ``dpsh-likelihood`` (the pairwise
likelihood of the batch's codes against a memory of every training code, written by sample
index before each loss) + 0.1 x ``sign-l2`` (``alpha * mean (u - sign u)^2``). RMSprop lr
1e-5, weight decay 1e-5 on every parameter, no schedule, batch 128, shuffled; 150 epochs
published (here the protocol's budget); evaluated every 5 epochs (here: on validation).
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
    "label_similarity": (
        "the reference's s_ij = [y_i . y_j > 0] on one-hot labels is 'same identity' here; a "
        "memory row not yet written has no identity, as the reference's zero label row"
    ),
}


class DPSHConfig(DeepMethodConfig):
    """DPSH's hyperparameters; defaults are the reference's."""

    backbone: PartSpec = Field(default_factory=face_backbone)
    head: PartSpec = Field(default_factory=lambda: PartSpec(name="fc", options={"activation": "none"}))
    losses: list[LossTerm] = Field(
        default_factory=lambda: [LossTerm(name="dpsh-likelihood"), LossTerm(name="sign-l2", weight=0.1)]
    )  # sign-l2's weight is the reference's alpha
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(name="rmsprop", lr=1e-5, weight_decay=1e-5, decay_scope="all", momentum=0.0)
    )  # torch RMSprop defaults otherwise (alpha 0.99, eps 1e-8), as the reference
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(batch_size=128, sampler="shuffle", selection="val_map", validate_every=5)
    )  # epochs: the protocol's budget (published: 150)


class DPSH(DeepHashPort):
    """Deep Pairwise-Supervised Hashing (IJCAI 2016), faithful to DeepHash-pytorch's DPSH.py."""

    name: ClassVar[str] = "dpsh"
    reference: ClassVar[Reference] = Reference(REFERENCE, epochs=PUBLISHED_EPOCHS)
    fixed_deviations: ClassVar[dict[str, str]] = FIXED_DEVIATIONS
    Config: ClassVar[type[StrictModel]] = DPSHConfig
    # tuning (bench tune): around the reference's lr 1e-5 and quantization weight 0.1
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-6, 1e-3),
        "loss.sign-l2.weight": log_uniform(1e-2, 1.0),
    }
