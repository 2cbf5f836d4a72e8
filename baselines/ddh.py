"""``ddh``: Discriminative Deep Hashing (Lin, Li, Tang; IJCAI 2017) as its official Keras
code ``xjcvip007/DDH`` (``DDH.py``, ``build_DDN_net`` / ``model_train``) releases it.

Parts: backbone ``ddh-net`` (conv 20/40/60, locally connected conv4 80, merged 860-d
multi-scale layer) -> head ``divide-encode`` (face feature Linear(860 -> 4K)+BN+ReLU,
one Linear(4 -> 1) per bit, BN, tanh). Loss: ``ce_code`` (softmax Linear(K -> C) on u)
+ 0.01 * ``quantization`` (alpha 1: mean | |u| - 1 |) + 1e-4 * sum ||W||^2 over every
kernel (conv, locally connected, dense, divide-and-encode, softmax: Keras
``W_regularizer=l2(1e-4)``, no 1/2, biases and BN excluded).

The L2 term is realised as the optimizer's *coupled* weight decay: torch Adam with
``weight_decay=2e-4`` on kernels (``decay_scope=kernels``) adds ``2e-4 * W`` to each
kernel's gradient before the moment estimates, which is exactly the gradient of
``1e-4 * ||W||^2`` in Keras' loss. Its value is therefore not part of the logged loss;
the tag ``ddh.weight_l2`` records how (and whether) a run applied it: under
``standard=harness-standard`` the shared optimizer replaces it.

Adam defaults (lr 1e-3), batch 256, shuffled; the checkpoint of the lowest training loss
is kept (Keras ``ModelCheckpoint(monitor='loss', save_best_only=True)``). The epoch
budget is the protocol's, except under ``standard=released`` (:meth:`DDH.released_config`):
200 epochs, ``legacy-ddh`` input, ``model.fit(validation_split=0.1)`` (the last 10% of the
training arrays, before shuffling, are never trained on; the gallery is still the whole
training file, as ``model_predict`` encodes it), ``EarlyStopping(monitor='loss',
patience=50)`` and the monitored loss with its L2 term.
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
from plugins.reference import LEGACY_METRICS

PUBLISHED_EPOCHS = 200
KERAS_L2 = 1e-4  # W_regularizer=l2(REGULARIZER_PARAMS): 1e-4 * sum(W^2) per kernel
KERAS_VALIDATION_SPLIT = 0.1  # model.fit(..., validation_split=0.1): trains on x[:int(0.9 N)]
KERAS_PATIENCE = 50  # EarlyStopping(monitor='loss', patience=50, mode='min')

#: Differences from the Keras reference that the port cannot avoid (or chooses), always true.
FIXED_DEVIATIONS: dict[str, str] = {
    "selection_loss": (
        "Keras' monitored loss averages every batch's loss with the L2 term at that batch's weights; "
        "under selection_l2 the harness adds the L2 term of the epoch's last weights to the epoch's mean loss"
    ),
    "adam_epsilon": "Keras 1 Adam adds epsilon before the bias correction, torch after it",
    "ce_clipping": "Keras clips softmax probabilities to [1e-7, 1 - 1e-7] in the cross-entropy",
    "sign_zero": (
        "Theano's T.sgn(0) = 0 gave a 0 bit (compactbit then adds nothing for it); here sign(0) = +1 "
        "(a tanh output of exactly 0 is rare in float32)"
    ),
}


class DDHConfig(DeepMethodConfig):
    """DDH's hyperparameters; defaults are the released code's."""

    backbone: PartSpec = Field(default_factory=lambda: PartSpec(name="ddh-net"))
    head: PartSpec = Field(default_factory=lambda: PartSpec(name="divide-encode", options={"split": 4}))
    losses: list[LossTerm] = Field(
        default_factory=lambda: [
            LossTerm(name="ce_code", weight=1.0),
            LossTerm(name="quantization", weight=0.01, options={"alpha": 1.0}),
        ]
    )
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(
            name="adam", lr=1e-3, weight_decay=2 * KERAS_L2, decay_scope="kernels"
        )  # coupled Adam decay 2e-4 == gradient of Keras' 1e-4 * sum ||W||^2
    )
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(batch_size=256, sampler="shuffle", selection="train_loss")
    )  # epochs: the protocol's budget (published: 200)


def weight_l2_tag(optimizer: OptimizerSpec) -> str:
    """How a run realises DDH's ``1e-4 * sum ||W||^2``.

    >>> weight_l2_tag(DDHConfig().optimizer)
    'as published: 0.0001*sum||W||^2 over kernels, as adam coupled weight_decay=0.0002 (same gradient)'
    >>> weight_l2_tag(OptimizerSpec(name="adamw", weight_decay=0.01))[:15]
    'not as publishe'
    """
    if optimizer.name in ("adam", "sgd") and optimizer.decay_scope == "kernels" and optimizer.weight_decay:
        l2 = optimizer.weight_decay / 2
        state = "as published" if l2 == KERAS_L2 else "changed"
        return (f"{state}: {l2:g}*sum||W||^2 over kernels, as {optimizer.name} coupled "
                f"weight_decay={optimizer.weight_decay:g} (same gradient)")
    return (f"not as published: optimizer {optimizer.name} weight_decay={optimizer.weight_decay:g} "
            f"decay_scope={optimizer.decay_scope} (reference: 1e-4*sum||W||^2 on kernels)")


class DDH(DeepMethod):
    """Discriminative Deep Hashing (IJCAI 2017), faithful to the released Keras code."""

    name: ClassVar[str] = "ddh"
    reference: ClassVar[Reference] = Reference("github.com/xjcvip007/DDH (Keras 1, DDH.py)", epochs=PUBLISHED_EPOCHS)
    fixed_deviations: ClassVar[dict[str, str]] = FIXED_DEVIATIONS
    Config: ClassVar[type[StrictModel]] = DDHConfig
    #: ``bench tune``: the learning rate, the quantization weight (released 0.01) and the
    #: kernels' L2 (released 2e-4 as coupled decay), each a decade or more around the release
    search_space: ClassVar[dict[str, Dimension]] = {
        "optimizer.lr": log_uniform(1e-4, 1e-2),
        "loss.quantization.weight": log_uniform(1e-3, 1e-1),
        "optimizer.weight_decay": log_uniform(2e-5, 2e-3),
    }

    released_metrics: ClassVar[tuple[str, ...]] = LEGACY_METRICS  # model_predict's evaluation

    def released_config(self) -> DDHConfig:
        """The released configuration (``model_train``): 200 epochs, its input and its fit."""
        config = DDHConfig(normalisation="legacy-ddh")
        config.training = config.training.model_copy(update={
            "epochs": PUBLISHED_EPOCHS, "holdout_fraction": KERAS_VALIDATION_SPLIT,
            "early_stop_patience": KERAS_PATIENCE, "selection_l2": True,
        })
        return config

    def own_tags(self, config: DDHConfig) -> dict[str, str]:
        """How the run realises the released L2 penalty."""
        return {"weight_l2": weight_l2_tag(config.optimizer)}
