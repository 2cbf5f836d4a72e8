"""The ``dcbh`` method: DCBH's released model assembled from reusable plugin parts.

Deep Clustering and Block Hashing (Jang, Jeong, Lee, Cho; ACCV 2018), as in the authors'
TensorFlow code ``youngkyunJang/DCBH`` (``main.py``, ``utils/Functions.py``):
``vgg16-trunc`` backbone -> ``block`` head (c = 6) with the losses
``ce_code`` (1) + ``ce_descriptor`` (1) + ``quantization`` (0.1, alpha 0.5) +
``center`` (1e-4, summed over the batch, centre rule on); Adam lr 1e-3, batch 256.

Two independent options reproduce what the released code evidently intended; both are off
as released: ``l2_regularizer`` (weight decay 2e-4 on conv/linear kernels: TF's
``l2_regularizer(2e-4)``, ``2e-4 * sum(w^2) / 2``, added to Adam's loss = PyTorch Adam's
coupled ``weight_decay=2e-4``; the released code applies the regularizer to the
regularization losses themselves, which makes it vanish) and ``shuffle`` (shuffled
batches: an assumption, the released code never shuffles; it walks the file in order).
``variant=intended`` turns both on.

Under ``standard=released`` (:meth:`DCBH.released_config`) the released loop runs: 2000
epochs, ``legacy-ddh`` input, BatchNorm statistics updated twice per step (``main.py``
evaluates the accuracy with ``training=True`` after the weight step, and
``updates_collections=None`` forces the moving-average updates), every 100 epochs the
lowest-loss checkpoint (weights, BN statistics, Adam state, centres) restored and trained on
(``saver.restore`` every 100 epochs), and the selection loss with its L2 term (``cost``).
Every run keeps the checkpoint of the lowest epoch training loss. :meth:`DCBH.tags` lists
every deviation from the released configuration: the fixed ones PyTorch forces and every
setting of the run that differs from it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from bench.api.deviations import flatten_config
from bench.api.methods import (
    DeepMethod,
    DeepMethodConfig,
    LossTerm,
    OptimizerSpec,
    PartSpec,
    Reference,
    StrictModel,
    TrainingSpec,
)
from bench.api.search import Dimension, log_uniform
from dcbh.deviations import FIXED_DEVIATIONS
from plugins.reference import LEGACY_METRICS

PUBLISHED_EPOCHS = 2000

#: The settings each intended option decides, as option -> ((group, field), value when on).
OPTION_SETTINGS: dict[str, tuple[tuple[str, str], Any]] = {
    "l2_regularizer": (("optimizer", "weight_decay"), 2e-4),
    "shuffle": (("training", "sampler"), "shuffle"),
}
RESTORE_EVERY = 100  # main.py: ``if epoch % 100 == 0: saver.restore(sess, MODEL_DIR + '/loss_train')``

class DCBHConfig(DeepMethodConfig):
    """DCBH's hyperparameters; defaults are the released code's."""

    added_fields: ClassVar[tuple[str, ...]] = (*DeepMethodConfig.added_fields, *OPTION_SETTINGS)

    variant: Literal["released", "intended"] = "released"  # intended: both options below on
    l2_regularizer: bool = False
    shuffle: bool = False
    backbone: PartSpec = Field(default_factory=lambda: PartSpec(name="vgg16-trunc"))
    head: PartSpec = Field(
        default_factory=lambda: PartSpec(name="block", options={"c": 6, "block_linear": False})
    )
    losses: list[LossTerm] = Field(
        default_factory=lambda: [
            LossTerm(name="ce_code", weight=1.0),
            LossTerm(name="ce_descriptor", weight=1.0),
            LossTerm(name="quantization", weight=0.1, options={"alpha": 0.5}),
            LossTerm(name="center", weight=1e-4, options={"reduction": "sum", "update": True}),
        ]
    )
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(
            name="adam", lr=1e-3, weight_decay=0.0, decay_scope="kernels"
        )
    )
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(
            batch_size=256, sampler="sequential", selection="train_loss"
        )
    )  # epochs: the protocol's budget, never the published 2000 (see ``reference``)


class DCBH(DeepMethod):
    """Deep Clustering and Block Hashing (ACCV 2018), faithful to the released TF code."""

    name: ClassVar[str] = "dcbh"
    reference: ClassVar[Reference] = Reference("github.com/youngkyunJang/DCBH (TensorFlow, released code)",
                                               epochs=PUBLISHED_EPOCHS)
    fixed_deviations: ClassVar[dict[str, str]] = FIXED_DEVIATIONS
    unreferenced: ClassVar[tuple[str, ...]] = ("variant",)
    Config: ClassVar[type[StrictModel]] = DCBHConfig
    #: ``bench tune``: the learning rate and the weights of the quantization (released 0.1)
    #: and centre (released 1e-4) losses, a decade around the release
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-4, 1e-2),
        "loss.quantization.weight": log_uniform(1e-2, 1.0),
        "loss.center.weight": log_uniform(1e-5, 1e-3),
    }
    released_metrics: ClassVar[tuple[str, ...]] = LEGACY_METRICS  # utils/RetrievalTest.py

    def released_config(self) -> DCBHConfig:
        """The released code's configuration: 2000 epochs, its input and its loop."""
        config = DCBHConfig(normalisation="legacy-ddh")
        config.training = config.training.model_copy(update={
            "epochs": PUBLISHED_EPOCHS, "extra_bn_pass": True, "restore_best_every": RESTORE_EVERY,
            "selection_l2": True,
        })
        return config

    def reference_config(self, config: DCBHConfig) -> DCBHConfig:
        """The released configuration with the intended options ``config`` turns on."""
        reference = self.released_config()
        for option in OPTION_SETTINGS:
            setattr(reference, option, getattr(config, option))
        reference.variant = config.variant
        return self.resolve(reference)

    def resolve(self, config: DCBHConfig) -> DCBHConfig:
        """Apply each intended option that is on to the setting it decides, where that still
        holds the released default; a value the user changed is kept."""
        defaults = flatten_config(DCBHConfig())
        data = config.model_dump(mode="python")
        for option, ((group, field), value) in OPTION_SETTINGS.items():
            on = getattr(config, option) or config.variant == "intended"
            if on and data[group][field] == defaults[f"{group}.{field}"]:
                data[group][field] = value
        return DCBHConfig.model_validate(data)

    def own_tags(self, config: DCBHConfig) -> dict[str, str]:
        """The variant and whether each intended option is on."""
        return {"variant": config.variant,
                **{option: str(getattr(config, option) or config.variant == "intended") for option in OPTION_SETTINGS}}
