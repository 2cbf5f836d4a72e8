"""DDH's face-feature layer and divide-and-encode module (official Keras code
``xjcvip007/DDH``, ``build_DDN_net``), as a head usable on any backbone.

The backbone's features are concatenated (for ``ddh-net``: the 860-d merged layer) and
mapped to the face feature ``f = ReLU(BN(Linear(in -> split*K)))`` (Keras
``face_feature_layer``); ``f`` is cut into K slices of ``split`` values, each slice is
fused to one value by its own ``Linear(split -> 1)`` (a block-diagonal layer, K*(split+1)
parameters: 240 for K=48, split=4), then ``u = tanh(BN(.))``: BatchNorm *before* tanh as
the released code has it (DDQH). With ``face_feature=False`` the features themselves
are divided (their width must be ``split*K``).

Keras 1 -> torch: Dense kernels Glorot-uniform, zero bias; BatchNormalization
``epsilon=1e-3, momentum=0.99`` -> ``eps=1e-3, momentum=0.01`` (option ``bn_momentum``).
``f`` is an output, so
descriptor losses (``center``, ``ce_descriptor``) apply to it.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, HashHead
from plugins.heads.block import BlockLinear
from plugins.heads.fc import concat_features
from plugins.layers.init import BN_EPS, init_xavier

KERAS1_BN_MOMENTUM = 0.01  # Keras 1 BatchNormalization(momentum=0.99)


class DivideEncodeHead(HashHead):
    """DDH head: face feature Linear(in -> split*K)+BN+ReLU, one Linear(split -> 1) per bit, BN, tanh."""

    def __init__(
        self,
        ctx: BuildContext,
        feature_dims: dict[str, int],
        split: int = 4,
        face_feature: bool = True,
        bn_momentum: float = KERAS1_BN_MOMENTUM,
    ) -> None:
        super().__init__()
        if split < 1:
            raise BenchError(f"head 'divide-encode': split={split}; use a positive slice width (DDH: 4)")
        self.bits = ctx.bits
        width = split * ctx.bits
        in_dim = sum(feature_dims.values())
        if face_feature:
            self.face = nn.Sequential(
                init_xavier(nn.Linear(in_dim, width)),
                nn.BatchNorm1d(width, eps=BN_EPS, momentum=bn_momentum),
                nn.ReLU(),
            )
        elif in_dim != width:
            raise BenchError(
                f"head 'divide-encode' with face_feature=false divides the features themselves, "
                f"which are {in_dim}-d but split*K = {width}; keep face_feature=true"
            )
        else:
            self.face = nn.Identity()
        self.encode = BlockLinear(ctx.bits, split)
        self.bn = nn.BatchNorm1d(ctx.bits, eps=BN_EPS, momentum=bn_momentum)
        self.output_dims = {"u": ctx.bits, "f": width}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        f = self.face(concat_features(features))
        return {"u": torch.tanh(self.bn(self.encode(f))), "f": f}
