"""Central similarity: binary cross-entropy of each relaxed code to its class's fixed hash
centre (CSQ, Yuan et al., CVPR 2020, as ``swuxyj/DeepHash-pytorch`` ``CSQ.py``
``CSQLoss`` computes its ``center_loss`` for single-label data)::

    BCE((u + 1) / 2, (c_y + 1) / 2), averaged over batch and bits

``u`` in (-1, 1) is the head's tanh output (the reference applies the tanh in the loss to
its linear hash layer; head ``fc`` with ``activation=tanh`` is the same). The centres are
a buffer from :mod:`plugins.losses.codebooks`, seeded by the run's seed. The reference's
quantization term ``lambda * mean (|u| - 1)^2`` is the part ``quantization`` with
``alpha=1, power=2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.api.interfaces import BuildContext, LossPart, StepContext
from plugins.losses.codebooks import make_codebook


class CentralSimilarityLoss(LossPart):
    """BCE of ``(u + 1) / 2`` to the class centre's ``(c + 1) / 2`` (CSQ)."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], codebook: str = "hadamard",
                 min_distance: int | None = None) -> None:
        super().__init__()
        self.register_buffer("centres", make_codebook(codebook, ctx.num_classes, ctx.bits, ctx.seed, min_distance))

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        targets = 0.5 * (self.centres[context.labels] + 1)
        return F.binary_cross_entropy(0.5 * (outputs["u"].float() + 1), targets)
