"""The plain fully connected hash layer: concatenated features -> Linear -> tanh.

``activation=none`` gives a linear hash layer whose sign is the code (DSH's ``ip1``);
``init=caffe-xavier`` initialises it as Caffe's ``xavier`` filler does (bias 0).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, HashHead
from plugins.layers.init import caffe_xavier_

ACTIVATIONS = {"tanh": torch.tanh, "none": lambda x: x}


def concat_features(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate named features in name order (the order ``feature_dims`` is summed in)."""
    return torch.cat([features[k].flatten(1) for k in sorted(features)], dim=1)


class FCHead(HashHead):
    """Plain fully connected hash layer ``u = tanh(W x + b)`` (or ``W x + b``) on all features."""

    def __init__(
        self, ctx: BuildContext, feature_dims: dict[str, int], activation: str = "tanh", init: str = "torch"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS or init not in ("torch", "caffe-xavier"):
            raise BenchError(
                f"head 'fc': activation '{activation}', init '{init}': use activation tanh|none "
                "and init torch|caffe-xavier"
            )
        self.bits = ctx.bits
        self.activation = activation
        self.linear = nn.Linear(sum(feature_dims.values()), ctx.bits)
        if init == "caffe-xavier":
            caffe_xavier_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)
        self.output_dims = {"u": ctx.bits}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"u": ACTIVATIONS[self.activation](self.linear(concat_features(features)))}
