"""The plain fully connected hash layer: concatenated features -> Linear -> tanh.

``activation=none`` gives a linear hash layer whose sign is the code (DSH's ``ip1``);
``init=caffe-xavier`` initialises it as Caffe's ``xavier`` filler does (bias 0),
``init=normal-0.01`` as DeepHash-pytorch's ResNet hash layer (N(0, 0.01^2), bias 0; CSQ).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, HashHead
from plugins.layers.init import LINEAR_INITS, init_linear

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
        if activation not in ACTIVATIONS or init not in LINEAR_INITS:
            raise BenchError(
                f"head 'fc': activation '{activation}', init '{init}': use activation tanh|none "
                f"and init {'|'.join(LINEAR_INITS)}"
            )
        self.bits = ctx.bits
        self.activation = activation
        self.linear = init_linear(nn.Linear(sum(feature_dims.values()), ctx.bits), init)
        self.output_dims = {"u": ctx.bits}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"u": ACTIVATIONS[self.activation](self.linear(concat_features(features)))}
