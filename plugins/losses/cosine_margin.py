"""Cosine-margin cross-entropy against a fixed +-1 codebook (OrthoHash, Hoe et al.,
NeurIPS 2021, as ``kamwoh/orthohash`` computes it: ``models/alexnet.py`` ``CosSim`` with
``learn_cent=False`` and ``functions/loss/orthohash.py`` ``OrthoHashLoss`` for
single-label data)::

    logits = cos(u, c_j) for every class centre c_j
    cos margin: CE(s * (logits - m * onehot(y)), y)
    arc margin: CE(s * cos(acos(clamp(logits, +-0.99999)) + m * onehot(y)), y)

Reference defaults (``main.py``): scale ``s=8``, margin ``m=0.2``, ``margin_type=cos``,
codebook ``bernoulli`` (``--codebook-method B``); its README's CIFAR-10 command uses
``--margin 0.3``. The codebook is a buffer (never trained), seeded by the run's seed.
OrthoHash's optional quantization term (``--quan``, default 0) is not part of it.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, LossPart, StepContext
from plugins.losses.codebooks import make_codebook


class CosineMarginLoss(LossPart):
    """Cross-entropy of scaled cosine logits to a fixed codebook, with an additive cosine
    (or angular) margin on the true class."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], scale: float = 8.0, margin: float = 0.2,
                 margin_type: Literal["cos", "arc"] = "cos", codebook: str = "bernoulli",
                 min_distance: int | None = None) -> None:
        super().__init__()
        if margin_type not in ("cos", "arc"):
            raise BenchError(f"loss 'cosine-margin-ce': margin_type '{margin_type}' is unknown; use cos or arc")
        self.scale, self.margin, self.margin_type = scale, margin, margin_type
        self.register_buffer("codebook", make_codebook(codebook, ctx.num_classes, ctx.bits, ctx.seed, min_distance))

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        u = outputs["u"].float()
        logits = (u / u.norm(dim=1, keepdim=True)) @ (self.codebook / self.codebook.norm(dim=1, keepdim=True)).T
        # scatter, not F.one_hot: one_hot checks the labels' range on the host (no CUDA graph)
        onehot = torch.zeros_like(logits).scatter_(1, context.labels.unsqueeze(1), self.margin)
        if self.margin_type == "cos":
            margin_logits = self.scale * (logits - onehot)
        else:
            margin_logits = self.scale * torch.cos(torch.acos(logits.clamp(-0.99999, 0.99999)) + onehot)
        return F.cross_entropy(margin_logits, context.labels)
