"""What the methods ported from ``swuxyj/DeepHash-pytorch`` (DPSH, HashNet, GreedyHash)
share: the reference's commit and the deviations every such port makes (:class:`DeepHashPort`).

Each reference script trains an ImageNet-pretrained AlexNet at 224x224 and keeps the
model of the best mAP **on the test set**; under every standard here the methods run on
the shared 32x32 face backbone and select on the validation split only.
"""

from __future__ import annotations

from typing import ClassVar

from bench.api.methods import DeepMethod, StrictModel

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


class DeepHashPort(DeepMethod):
    """A method ported from DeepHash-pytorch: :data:`REFERENCE` at the method's published epochs,
    :data:`COMMON_DEVIATIONS` besides its own, and the protocol's epochs not counted as one.

    >>> from bench.api.methods import OptimizerSpec, Reference
    >>> class Port(DeepHashPort):
    ...     name, reference, fixed_deviations = "x", Reference(REFERENCE, epochs=150), {"own": "why"}
    ...     def reference_config(self, config): return OptimizerSpec()
    >>> tags = Port().tags(OptimizerSpec(lr=0.5))
    >>> tags["x.published_epochs"], tags["deviation.config.lr"], "deviation.own" in tags, "deviation.input" in tags
    ('150', '0.5 (reference: 0.001)', True, True)
    """

    unreferenced: ClassVar[tuple[str, ...]] = ("training.epochs",)

    def deviations(self, config: StrictModel) -> dict[str, str]:
        """The deviations every port makes, then the method's own."""
        return {**COMMON_DEVIATIONS, **self.fixed_deviations}
