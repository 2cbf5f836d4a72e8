"""``dsh``: Deep Supervised Hashing (Liu, Wang, Shan, Chen; CVPR 2016) as its official
Caffe code ``lhmRyan/deep-supervised-hashing-DSH`` releases it (``CIFAR-10/
train_test.prototxt``, ``solver.prototxt``, ``hashing_loss_layer.cpp``,
``hashing_image_data_layer.cpp``).

Parts: backbone ``dsh-net`` (conv32-maxpool-ReLU-LRN, conv32-avgpool-ReLU-LRN,
conv64-ReLU-avgpool, FC500-ReLU) -> head ``fc`` without activation (``ip1``, FC K,
Caffe xavier init); the code is the sign of its output. Loss ``dsh-pairwise`` (margin
2K, alpha 0.01, normalised as the released layer). SGD lr 1e-3, momentum 0.9, weight
decay 0.004 on kernels only (``decay_mult: 0`` on biases), batch 200; lr x0.1 at 60k and
65k of 70k iterations, scaled to the protocol's step budget; the final weights are
kept (the released scripts use the last snapshot). By default batches are class-balanced
(the ``balanced`` sampler, 10 identities per batch, as the ``HashingImageData`` layer's
``cat_per_iter: 10``): the harness's choice for face data, where dissimilar pairs dominate,
not the released one: that layer is commented out of ``train_test.prototxt``.

Under ``standard=released`` (:meth:`DSH.released_config`) the active ``Data`` layer and
solver run: plain shuffled batches of 200, the training set's mean image subtracted from raw
0-255 pixels (``mean_file``, normaliser ``caffe-mean-image``) with mirroring
(``mirror: true``), biases at twice the learning rate (``lr_mult: 2``) and the 70k-iteration
schedule. The other code lengths are fine-tuned from the 12-bit model as
``finetune_solver.prototxt`` does with ``--set dsh.finetune=true --set
training.init_from=<the 12-bit run's checkpoint.pt>``: lr 1e-4, x0.6 every 4k of 30k
iterations, the new hash layer (``ip1_f``) at lr x10 (its bias x20), everything else loaded.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bench.api.errors import BenchError
from bench.api.methods import (
    DeepMethod,
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

PUBLISHED_ITERATIONS = 70_000
PUBLISHED_MILESTONES = (60_000, 65_000)
FINETUNE_ITERATIONS, FINETUNE_STEP, FINETUNE_GAMMA, FINETUNE_LR = 30_000, 4_000, 0.6, 1e-4  # finetune_solver
FINETUNE_HEAD_LR_MULT = 10.0  # finetune.prototxt: ip1_f lr_mult 10 (bias 20 = 10 x bias_lr_mult 2)

#: Differences from the Caffe reference that the port cannot avoid (or chooses), always true.
FIXED_DEVIATIONS: dict[str, str] = {
    "sgd_momentum": (
        "Caffe folds the learning rate into the momentum buffer, torch applies it after; they "
        "differ only in the steps right after a learning-rate drop"
    ),
    "code_lengths": (
        "the released scripts train 12 bits from scratch and fine-tune the other lengths from it "
        "(finetune_solver); this run trained from scratch (dsh.finetune=true with training.init_from "
        "fine-tunes)"
    ),
    "mirror_mean_order": (
        "Caffe subtracts the mean image at the source pixel before mirroring; here the mirrored "
        "image has the mean subtracted at its own position (equal for a symmetric mean image)"
    ),
    "data_order": (
        "Caffe's Data layer reads the LMDB in its stored order and cycles, batches straddling the "
        "epoch's end; here every epoch is a new permutation cut into batches (the last one smaller)"
    ),
    "loss_display": "the logged loss includes the pair terms' 1/2, which Caffe's displayed value omits",
}
BALANCED_DEVIATION = ("an identity contributes at most batch_size/ids_per_batch images and never repeats one, so "
                      "identities with fewer images make smaller batches (ORL: 10 x 7 = 70, not 200); Caffe's "
                      "layer assumes every class has enough images")


class DSHConfig(DeepMethodConfig):
    """DSH's hyperparameters; defaults are the released code's."""

    backbone: PartSpec = Field(default_factory=lambda: PartSpec(name="dsh-net"))
    head: PartSpec = Field(
        default_factory=lambda: PartSpec(name="fc", options={"activation": "none", "init": "caffe-xavier"})
    )
    losses: list[LossTerm] = Field(
        default_factory=lambda: [LossTerm(name="dsh-pairwise", weight=1.0, options={"alpha": 0.01})]
    )  # margin: 2K by default
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(
            name="sgd", lr=1e-3, momentum=0.9, weight_decay=0.004, decay_scope="kernels"
        )
    )
    schedule: ScheduleSpec = Field(
        default_factory=lambda: ScheduleSpec(
            name="step", milestones=[m / PUBLISHED_ITERATIONS for m in PUBLISHED_MILESTONES], gamma=0.1
        )
    )
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(
            batch_size=200, sampler="balanced", ids_per_batch=10, selection="last"
        )
    )  # epochs: the protocol's budget (published: 70k iterations)
    finetune: bool = False  # finetune_solver.prototxt on top of training.init_from

    added_fields: ClassVar[tuple[str, ...]] = (*DeepMethodConfig.added_fields, "finetune")


class DSH(DeepMethod):
    """Deep Supervised Hashing (CVPR 2016), faithful to the released Caffe code."""

    name: ClassVar[str] = "dsh"
    reference: ClassVar[Reference] = Reference(
        "github.com/lhmRyan/deep-supervised-hashing-DSH (Caffe, CIFAR-10 prototxt)", iterations=PUBLISHED_ITERATIONS)
    fixed_deviations: ClassVar[dict[str, str]] = FIXED_DEVIATIONS
    unreferenced: ClassVar[tuple[str, ...]] = ("training.epochs",)
    Config: ClassVar[type[StrictModel]] = DSHConfig
    #: ``bench tune``: the learning rate, the regulariser weight alpha (released 0.01) and the
    #: weight decay (released 0.004); the margin stays 2K (a range in bits would depend on K)
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-4, 1e-2),
        "loss.dsh-pairwise.alpha": log_uniform(1e-3, 1e-1),
        "optimizer.weight_decay": log_uniform(4e-4, 4e-2),
    }

    def released_config(self) -> DSHConfig:
        """The active data layer and solver of the released prototxt files (12 bits)."""
        config = DSHConfig(normalisation="caffe-mean-image", augmentation="flip")
        config.optimizer = config.optimizer.model_copy(update={"bias_lr_mult": 2.0})
        config.training = config.training.model_copy(update={"sampler": "shuffle", "iterations": PUBLISHED_ITERATIONS})
        return config

    def resolve(self, config: DSHConfig) -> DSHConfig:
        """With ``finetune``: ``finetune_solver.prototxt``'s rate and schedule (its 30k-iteration
        budget where the run counts iterations) and the hash layer at lr x10."""
        if not config.finetune:
            return config
        if not config.training.init_from:
            raise BenchError("dsh.finetune=true: give the 12-bit model with --set training.init_from=<its checkpoint.pt>")
        steps = range(FINETUNE_STEP, FINETUNE_ITERATIONS, FINETUNE_STEP)
        update = {
            "optimizer": config.optimizer.model_copy(update={"lr": FINETUNE_LR}),
            "schedule": ScheduleSpec(name="step", milestones=[s / FINETUNE_ITERATIONS for s in steps], gamma=FINETUNE_GAMMA),
            "head": config.head.model_copy(update={"lr_mult": FINETUNE_HEAD_LR_MULT}),
        }
        if config.training.iterations:
            update["training"] = config.training.model_copy(update={"iterations": FINETUNE_ITERATIONS})
        return config.model_copy(update=update)

    def deviations(self, config: DSHConfig) -> dict[str, str]:
        """The fixed deviations, balanced batches where the run uses them; fine-tuning is the
        released scripts' own way to other code lengths."""
        fixed = FIXED_DEVIATIONS | ({"balanced_batches": BALANCED_DEVIATION} if config.training.sampler == "balanced" else {})
        return {k: v for k, v in fixed.items() if k != "code_lengths"} if config.finetune else fixed

    def reference_config(self, config: DSHConfig) -> DSHConfig:
        """The released configuration; with ``finetune``, finetune_solver on the same 12-bit model."""
        reference = self.released_config()
        if not config.finetune:
            return reference
        training = reference.training.model_copy(update={"init_from": config.training.init_from})
        return self.resolve(reference.model_copy(update={"finetune": True, "training": training}))
