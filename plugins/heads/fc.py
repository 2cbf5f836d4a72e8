"""The plain fully connected hash layer: concatenated features -> Linear -> tanh."""

from __future__ import annotations

import torch
from torch import nn

from bench.interfaces import BuildContext, HashHead


def concat_features(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate named features in name order (the order ``feature_dims`` is summed in)."""
    return torch.cat([features[k].flatten(1) for k in sorted(features)], dim=1)


class FCHead(HashHead):
    """Plain fully connected hash layer ``u = tanh(W x + b)`` on all features."""

    def __init__(self, ctx: BuildContext, feature_dims: dict[str, int]) -> None:
        super().__init__()
        self.bits = ctx.bits
        self.linear = nn.Linear(sum(feature_dims.values()), ctx.bits)
        self.output_dims = {"u": ctx.bits}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"u": torch.tanh(self.linear(concat_features(features)))}
