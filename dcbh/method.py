"""The ``dcbh`` method: DCBH's released model assembled from reusable plugin parts.

Deep Clustering and Block Hashing (Jang, Jeong, Lee, Cho; ACCV 2018), as in the authors'
TensorFlow code ``youngkyunJang/DCBH`` (``main.py``, ``utils/Functions.py``):
``vgg16-trunc`` backbone -> ``block`` head (c = 6) with the losses
``ce_code`` (1) + ``ce_descriptor`` (1) + ``quantization`` (0.1, alpha 0.5) +
``center`` (1e-4, summed over the batch, centre rule on); Adam lr 1e-3, batch 256.

``variant`` picks between the code as released and as evidently intended:

- ``released``: weight decay 0 (the released code applies its L2 regularizer to the
  regularization losses themselves, which makes it vanish), batches in file order;
- ``intended``: weight decay 2e-4 on conv/linear kernels (TF's ``l2_regularizer(2e-4)``,
  ``2e-4 * sum(w^2) / 2``, added to Adam's loss = PyTorch Adam's coupled
  ``weight_decay=2e-4``), shuffled batches.

Both keep the checkpoint of the lowest epoch training loss, as the released loop does.
The training length is the protocol's budget; the published 2000 epochs are recorded in
the tags. :meth:`DCBH.tags` lists every deviation from the reference: the fixed ones
PyTorch forces and every setting of the run that differs from the variant's reference.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from bench.api.methods import (
    DeepMethod,
    DeepMethodConfig,
    LossTerm,
    OptimizerSpec,
    PartSpec,
    StrictModel,
    TrainingSpec,
)
from bench.api.search import Dimension, log_uniform
from plugins.reference import deviation_tags, flatten_config

PUBLISHED_EPOCHS = 2000

#: Settings a variant decides, as (group, field) -> value. ``released`` equals the defaults.
VARIANT_SETTINGS: dict[str, dict[tuple[str, str], Any]] = {
    "released": {("optimizer", "weight_decay"): 0.0, ("training", "sampler"): "sequential"},
    "intended": {("optimizer", "weight_decay"): 2e-4, ("training", "sampler"): "shuffle"},
}

#: Differences from the TF reference that the port cannot avoid (or chooses), always true.
FIXED_DEVIATIONS: dict[str, str] = {
    "bn_zero_debias": (
        "TF batch_norm(zero_debias_moving_mean=True) has no PyTorch counterpart; running "
        "means are not zero-debiased (affects evaluation-time statistics in early steps)"
    ),
    "bn_running_var": "PyTorch's BatchNorm running variance uses the Bessel-corrected batch variance",
    "adam_epsilon": (
        "TF Adam adds epsilon before the bias correction (effective 1e-8/sqrt(1-beta2^t)), "
        "PyTorch after it"
    ),
    "feature_concat_order": (
        "descriptor input is [block3, block4]; TF concatenates [block4, block3] (a fixed "
        "permutation of the Linear's input columns, same model family and init)"
    ),
    "center_update_order": (
        "centre rule applied after the optimizer step with the centres the forward pass read; "
        "TF runs scatter_sub before Adam's update in the same session step"
    ),
    "checkpoint_selection": (
        "lowest epoch training loss over all epochs; TF also saved unconditionally at epoch 5 "
        "and only below an initial threshold of 10.0"
    ),
}


class DCBHConfig(DeepMethodConfig):
    """DCBH's hyperparameters; defaults are the released code's."""

    variant: Literal["released", "intended"] = "released"
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

    Config: ClassVar[type[StrictModel]] = DCBHConfig
    #: ``bench tune``: the learning rate and the weights of the quantization (released 0.1)
    #: and centre (released 1e-4) losses, a decade around the release
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-4, 1e-2),
        "loss.quantization.weight": log_uniform(1e-2, 1.0),
        "loss.center.weight": log_uniform(1e-5, 1e-3),
    }
    published_epochs: ClassVar[int] = PUBLISHED_EPOCHS

    def reference(self, variant: str) -> DCBHConfig:
        """The reference configuration of ``variant``, with the published 2000 epochs."""
        config = self.resolve(DCBHConfig(variant=variant))
        config.training.epochs = PUBLISHED_EPOCHS
        return config

    def resolve(self, config: DCBHConfig) -> DCBHConfig:
        """Apply the variant to every setting it decides that still holds the released
        default; a value the user changed (``--set optimizer.weight_decay=...``) is kept."""
        defaults = flatten_config(DCBHConfig())
        data = config.model_dump(mode="python")
        for (group, field), value in VARIANT_SETTINGS[config.variant].items():
            if data[group][field] == defaults[f"{group}.{field}"]:
                data[group][field] = value
        return DCBHConfig.model_validate(data)

    def tags(self, config: DCBHConfig) -> dict[str, str]:
        """The variant, the published epoch count and every deviation from the reference."""
        tags = {
            "dcbh.variant": config.variant,
            "dcbh.published_epochs": str(PUBLISHED_EPOCHS),
            "dcbh.reference": "github.com/youngkyunJang/DCBH (TensorFlow, released code)",
        }
        tags.update(deviation_tags(config, self.reference(config.variant), FIXED_DEVIATIONS, ignore=("variant",)))
        return tags
