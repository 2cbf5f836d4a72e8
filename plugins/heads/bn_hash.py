"""The batch-normalised hash layer: concatenated features -> Linear -> BatchNorm1d, no
activation; the code is the sign of the normalised output.

DCDH (``hash_layer``: ``Linear(1024, K)`` with bias, Glorot-normal, then
``BatchNorm1d(K)``) and OrthoHash (``hash_fc``: ``Linear(d, K, bias=False)``,
N(0, 0.01^2), then ``BatchNorm1d(K, momentum=0.1)``) both end in this layer; torch's
BatchNorm defaults (eps 1e-5, momentum 0.1) are theirs.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, HashHead
from plugins.heads.fc import concat_features
from plugins.layers.init import LINEAR_INITS, init_linear


class BNHashHead(HashHead):
    """Hash layer ``u = BN(W x (+ b))`` on all features, without activation."""

    def __init__(
        self, ctx: BuildContext, feature_dims: dict[str, int], bias: bool = True, init: str = "torch"
    ) -> None:
        super().__init__()
        if init not in LINEAR_INITS:
            raise BenchError(f"head 'bn-hash': init '{init}' is unknown; use one of {', '.join(LINEAR_INITS)}")
        self.bits = ctx.bits
        self.linear = init_linear(nn.Linear(sum(feature_dims.values()), ctx.bits, bias=bias), init)
        self.norm = nn.BatchNorm1d(ctx.bits)
        self.output_dims = {"u": ctx.bits}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"u": self.norm(self.linear(concat_features(features)))}
