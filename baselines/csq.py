"""``csq``: Central Similarity Quantization (Yuan, Wang, Zhang, et al.; CVPR 2020) as the
reference library ``swuxyj/DeepHash-pytorch`` (``CSQ.py``, ``network.py``) trains it.

Parts: the shared face backbone (:func:`plugins.backbones.defaults.face_backbone`) ->
head ``fc`` (``Linear -> tanh``, N(0, 0.01^2) kernel, zero bias: the library's ResNet
hash layer with the loss's tanh). Loss: ``csq-central`` (BCE to the class hash centres:
Hadamard rows where K is a power of two, else Bernoulli centres at a guaranteed minimum
distance, :mod:`plugins.losses.codebooks`) + 1e-4 x ``quantization`` (``mean (|u| -
1)^2``). RMSprop lr 1e-5, weight decay 1e-5 on every parameter (coupled), batch 64,
shuffled, no schedule. The library validates every 10 epochs and keeps the best mAP (on
its test set); here on the validation split every 10 epochs.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

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
from plugins.backbones.defaults import face_backbone

PUBLISHED_EPOCHS = 150  # get_config(): "epoch": 150 (ImageNet, ResNet50)

#: Differences from the reference library that the port cannot avoid (or chooses), always true.
FIXED_DEVIATIONS: dict[str, str] = {
    "backbone": (
        "the library fine-tunes an ImageNet-pretrained ResNet50 at 224x224; here the shared 32x32 "
        "face backbone trains from scratch (--backbone swaps it)"
    ),
    "input": (
        "the library resizes to 256, crops 224 (random with flips for training) and applies "
        "ImageNet's mean/std; here the protocol's input size, normalisation and augmentation"
    ),
    "centres": (
        "the library builds centres only where K is a power of two (scipy's hadamard raises "
        "otherwise) and fills rows past 2K with random balanced words, redrawn up to 20 times "
        "until min > K/4 and mean >= K/2 and kept regardless; here those rows (and every row "
        "at other lengths) are Bernoulli centres at least the Gilbert-Varshamov distance apart"
    ),
    "selection": "the library keeps the best test-set mAP every 10 epochs; here the validation split's",
    "budget": "the published 150 epochs become the protocol's epochs (no schedule to scale)",
}


class CSQConfig(DeepMethodConfig):
    """CSQ's hyperparameters; defaults are the reference library's."""

    backbone: PartSpec = Field(default_factory=face_backbone)
    head: PartSpec = Field(
        default_factory=lambda: PartSpec(name="fc", options={"activation": "tanh", "init": "normal-0.01"})
    )
    losses: list[LossTerm] = Field(
        default_factory=lambda: [
            LossTerm(name="csq-central", weight=1.0, options={"codebook": "hadamard"}),
            LossTerm(name="quantization", weight=1e-4, options={"alpha": 1.0, "power": 2.0}),
        ]
    )  # "lambda": 0.0001
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(
            name="rmsprop", lr=1e-5, weight_decay=1e-5, decay_scope="all", momentum=0.0
        )
    )
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(batch_size=64, sampler="shuffle", selection="val_map", validate_every=10)
    )  # epochs: the protocol's budget (published: 150)


class CSQ(DeepMethod):
    """Central Similarity Quantization (CVPR 2020), faithful to DeepHash-pytorch's CSQ.py."""

    name: ClassVar[str] = "csq"
    reference: ClassVar[Reference] = Reference("github.com/swuxyj/DeepHash-pytorch (CSQ.py, ResNet50 config)",
                                               epochs=PUBLISHED_EPOCHS)
    fixed_deviations: ClassVar[dict[str, str]] = FIXED_DEVIATIONS
    Config: ClassVar[type[StrictModel]] = CSQConfig
    # tuning (bench tune): around the reference's lr 1e-5 and quantization weight 1e-4
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-6, 1e-3),
        "loss.quantization.weight": log_uniform(1e-5, 1e-2),
    }
