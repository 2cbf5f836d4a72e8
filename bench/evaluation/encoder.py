"""A trained model as one encoder: uint8 images in, binary codes out.

:class:`CodeEncoder` chains what :func:`bench.evaluation.encoding.encode_codes` does for a
split (the fitted normalisation of that split, the model's relaxed codes ``u``, sign with
sign(0) = +1), so the codes it gives for the same batch are the harness's own, bit for bit. It
is what a run stores as its model (:mod:`bench.tracking.models`) and what ``bench export`` writes.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.data.preprocess import Normaliser


class CodeEncoder(nn.Module):
    """``images`` (N, C, H, W) uint8 at the run's input size -> codes (N, K) int8 in {-1, +1}.

    ``part``: the split whose normalisation statistics new images take (the queries': a new
    image is a query).
    """

    def __init__(self, model: nn.Module, normaliser: Normaliser, part: int) -> None:
        super().__init__()
        self.model = model
        self.normaliser = normaliser
        self.part = part

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        u = self.model(self.normaliser.transform(images.float(), self.part))["u"].float()
        return torch.where(u >= 0, 1, -1).to(torch.int8)
