"""What the methods ported from ``swuxyj/DeepHash-pytorch`` (DPSH, HashNet, GreedyHash)
share: the reference's commit, the deviations every such port makes, and their tags.

Each reference script trains an ImageNet-pretrained AlexNet at 224x224 and keeps the
model of the best mAP **on the test set**; under every standard here the methods run on
the shared 32x32 face backbone and select on the validation split only.
"""

from __future__ import annotations

from pydantic import BaseModel

from plugins.reference import reference_tags

REFERENCE = "github.com/swuxyj/DeepHash-pytorch@ab14068 (PyTorch)"

#: Deviations every DeepHash-pytorch port here makes (a method adds its own).
COMMON_DEVIATIONS: dict[str, str] = {
    "backbone": (
        "the reference fine-tunes ImageNet-pretrained AlexNet (fc6/fc7 with dropout, then the hash "
        "layer) at 224x224; here the shared 32x32 face backbone (plugins.backbones.defaults) is "
        "trained from scratch under one linear hash layer"
    ),
    "input": (
        "the reference resizes to 256, random-crops 224 and flips training images; here the "
        "protocol's input size, normalisation and augmentation apply"
    ),
    "model_selection": (
        "the reference keeps the model of the best mAP on the test set (every test_map epochs); "
        "here the checkpoint is selected on the validation split only, at the same cadence"
    ),
    "budget": "the published epochs become the protocol's epochs; schedules keep their fractions of the budget",
}


def deephash_tags(
    method: str, config: BaseModel, reference: BaseModel, fixed: dict[str, str], published_epochs: int
) -> dict[str, str]:
    """The reference, its published epochs and every deviation (common, the method's own and
    each setting that differs from ``reference``; the protocol's epochs are not one).

    >>> from bench.api.methods import OptimizerSpec
    >>> tags = deephash_tags("x", OptimizerSpec(lr=0.5), OptimizerSpec(), {"own": "why"}, 150)
    >>> tags["x.published_epochs"], tags["deviation.config.lr"], "deviation.model_selection" in tags
    ('150', '0.5 (reference: 0.001)', True)
    """
    return reference_tags(method, REFERENCE, published_epochs, config, reference, {**COMMON_DEVIATIONS, **fixed},
                          ignore=("training.epochs",))
