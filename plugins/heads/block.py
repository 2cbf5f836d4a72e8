"""DCBH's block hashing layer (released code: ``Slice_Encode`` in ``utils/Functions.py``).

The descriptor ``f = ReLU(BN(Linear(features -> c*K)))`` is split into K contiguous
blocks of ``c`` values. In the released (parameter-free) layer each bit is
``u_k = tanh(max(softmax(block_k)) - 0.5)``; the released code's unused
``Slice_Encode_Linear`` variant (``block_linear=True``) has one ``Linear(c -> 1)`` per
block instead, ``u_k = tanh(w_k . block_k + b_k)`` (block-diagonal weights, K*(c+1)
parameters). Both ``f`` (width c*K, for the descriptor losses) and ``u`` are outputs.

TF -> PyTorch: ``tf.layers.dense`` with ``xavier_initializer`` -> ``Linear`` with
Glorot-uniform kernel and zero bias; ``batch_norm(decay=0.9)`` -> ``BatchNorm1d(eps=1e-3,
momentum=0.1)`` (see :mod:`plugins.layers.init`; no zero-debiasing of the running mean).
The features are concatenated in name order (``block3`` then ``block4``) where TF
concatenates block 4 first: a fixed permutation of the Linear's input columns, which
leaves the model and its Glorot initialisation distribution unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, HashHead
from plugins.heads.fc import concat_features
from plugins.layers.init import BN_EPS, BN_MOMENTUM, init_xavier


def block_softmax_bits(f: torch.Tensor, bits: int) -> torch.Tensor:
    """Parameter-free block hashing: ``tanh(max(softmax(block_k)) - 0.5)`` per block.

    >>> f = torch.tensor([[0.0, 0.0, 5.0, 0.0]])  # two blocks of c = 2: tanh(0), tanh(sigmoid(5) - .5)
    >>> [round(v, 4) for v in block_softmax_bits(f, 2)[0].tolist()]
    [0.0, 0.4568]
    """
    blocks = f.view(f.shape[0], bits, -1)
    return torch.tanh(torch.softmax(blocks, dim=2).amax(dim=2) - 0.5)


def block_bit_range(c: int) -> tuple[float, float]:
    """The interval the parameter-free layer's bits lie in: ``[tanh(1/c - 0.5), tanh(0.5)]``.

    >>> [round(v, 4) for v in block_bit_range(6)]
    [-0.3215, 0.4621]
    """
    return math.tanh(1.0 / c - 0.5), math.tanh(0.5)


class BlockLinear(nn.Module):
    """One ``Linear(c -> 1)`` per block: weight (K, c), bias (K), Glorot-uniform per block."""

    def __init__(self, bits: int, c: int) -> None:
        super().__init__()
        limit = math.sqrt(6.0 / (c + 1))  # Glorot uniform of a (c, 1) dense kernel
        self.weight = nn.Parameter(torch.empty(bits, c).uniform_(-limit, limit))
        self.bias = nn.Parameter(torch.zeros(bits))

    def kernel_parameters(self) -> list[nn.Parameter]:
        """The kernels weight decay applies to (see :func:`bench.training.assembly.kernel_parameters`)."""
        return [self.weight]

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        blocks = f.view(f.shape[0], self.weight.shape[0], -1)
        return torch.einsum("nkc,kc->nk", blocks, self.weight) + self.bias


class BlockHead(HashHead):
    """DCBH block hashing layer: descriptor f (c*K) then K bits from blocks of c values."""

    def __init__(
        self, ctx: BuildContext, feature_dims: dict[str, int], c: int = 6, block_linear: bool = False
    ) -> None:
        super().__init__()
        if c < 2:
            raise BenchError(f"head 'block': c={c} gives blocks of one value; use c >= 2 (DCBH: 6)")
        self.bits = ctx.bits
        self.c = c
        width = c * ctx.bits
        self.linear = nn.Linear(sum(feature_dims.values()), width)
        self.bn = nn.BatchNorm1d(width, eps=BN_EPS, momentum=BN_MOMENTUM)
        init_xavier(self.linear)
        self.block = BlockLinear(ctx.bits, c) if block_linear else None
        self.output_dims = {"u": ctx.bits, "f": width}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        f = torch.relu(self.bn(self.linear(concat_features(features))))
        if self.block is None:
            u = block_softmax_bits(f, self.bits)
        else:
            u = torch.tanh(self.block(f))
        return {"u": u, "f": f}
