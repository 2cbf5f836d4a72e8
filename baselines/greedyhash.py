"""``greedyhash``: GreedyHash (Su, Zhang, Wang, Tian; NeurIPS 2018) as
``swuxyj/DeepHash-pytorch`` ``GreedyHash.py`` implements it (``get_config``,
``GreedyHashLoss``, the supervised version).

Parts: the shared face backbone -> head ``fc-sign`` (the reference's ``Linear(4096, K)``
output h, coded as ``b = sign(h)`` in the forward pass with the gradient passed straight
through); losses ``ce_code`` (a ``Linear(K, C, bias=False)`` classifier on b, PyTorch init,
trained with the network) + 0.1 x ``cubic`` (``alpha * mean | |h| - 1 |^3``; the reference's
ImageNet setting is alpha 1). SGD lr 1e-3, momentum 0.9, weight decay 5e-4 on every
parameter, lr x0.1 every 30 of the published 200 epochs (here the same fractions of the
protocol's budget), batch 64, shuffled; evaluated every 3 epochs (here: on validation).
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
    ScheduleSpec,
    StrictModel,
    TrainingSpec,
)
from bench.api.search import Dimension, log_uniform
from plugins.backbones.defaults import face_backbone
from plugins.deephash_pytorch import REFERENCE, DeepHashPort

PUBLISHED_EPOCHS = 200
LR_DECREASE_EVERY = 30  # epochs (the reference's epoch_lr_decrease)

#: Differences from the reference beyond plugins.deephash_pytorch.COMMON_DEVIATIONS.
FIXED_DEVIATIONS: dict[str, str] = {
    "sign_zero": "the code is sign(h) with sign(0) = +1 (torch.sign gives 0); h = 0 exactly has measure zero",
    "lr_steps": "lr x0.1 at 30, 60, ..., 180 of 200 epochs becomes the same fractions of the protocol's step budget",
}


class GreedyHashConfig(DeepMethodConfig):
    """GreedyHash's hyperparameters; defaults are the reference's."""

    backbone: PartSpec = Field(default_factory=face_backbone)
    head: PartSpec = Field(default_factory=lambda: PartSpec(name="fc-sign"))
    losses: list[LossTerm] = Field(
        default_factory=lambda: [LossTerm(name="ce_code", options={"bias": False, "init": "torch"}),
                                 LossTerm(name="cubic", weight=0.1)]
    )  # cubic's weight is the reference's alpha
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(name="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4, decay_scope="all")
    )
    schedule: ScheduleSpec = Field(
        default_factory=lambda: ScheduleSpec(
            name="step", gamma=0.1,
            milestones=[e / PUBLISHED_EPOCHS for e in range(LR_DECREASE_EVERY, PUBLISHED_EPOCHS, LR_DECREASE_EVERY)])
    )
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(batch_size=64, sampler="shuffle", selection="val_map", validate_every=3)
    )  # epochs: the protocol's budget (published: 200)


class GreedyHash(DeepHashPort):
    """GreedyHash (NeurIPS 2018), faithful to DeepHash-pytorch's GreedyHash.py."""

    name: ClassVar[str] = "greedyhash"
    reference: ClassVar[Reference] = Reference(REFERENCE, epochs=PUBLISHED_EPOCHS)
    fixed_deviations: ClassVar[dict[str, str]] = FIXED_DEVIATIONS
    Config: ClassVar[type[StrictModel]] = GreedyHashConfig
    # tuning (bench tune): around the reference's lr 1e-3 and cubic-penalty weight 0.1
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-4, 1e-2),
        "loss.cubic.weight": log_uniform(1e-2, 1.0),
    }
