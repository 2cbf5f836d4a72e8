"""Binarisation inside the network with a straight-through gradient (GreedyHash, Su et al.,
NeurIPS 2018): the forward pass is the code itself, ``sign(h)`` with sign(0) = +1 as the
harness's codes have it, and the backward pass hands the gradient to ``h`` unchanged, as if
the sign were the identity. A head that returns ``straight_through_sign(h)`` as ``u`` trains
on its binary codes; their sign (the stored code) is ``u`` itself. ``fc-sign`` is such a
head: the ``fc`` layer without activation, ``h = W x + b``, then ``u = sign(h)``; both are
outputs (losses such as ``cubic`` read ``h``).
"""

from __future__ import annotations

import torch

from bench.api.interfaces import BuildContext
from plugins.heads.fc import FCHead, concat_features


class StraightThroughSign(torch.autograd.Function):
    """``sign`` forward (sign(0) = +1, in the input's dtype), identity backward."""

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        return torch.where(h >= 0, 1.0, -1.0).to(h.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def straight_through_sign(h: torch.Tensor) -> torch.Tensor:
    """Codes in {-1, +1} whose gradient flows to ``h`` as if they were ``h``.

    >>> h = torch.tensor([-0.5, 0.0, 2.0], requires_grad=True)
    >>> b = straight_through_sign(h)
    >>> b.tolist()
    [-1.0, 1.0, 1.0]
    >>> (b * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    >>> h.grad.tolist()
    [1.0, 2.0, 3.0]
    """
    return StraightThroughSign.apply(h)


class SignFCHead(FCHead):
    """Linear hash layer ``h = W x + b`` whose code ``u = sign(h)`` trains straight-through (GreedyHash)."""

    def __init__(self, ctx: BuildContext, feature_dims: dict[str, int], init: str = "torch") -> None:
        super().__init__(ctx, feature_dims, activation="none", init=init)
        self.output_dims = {"u": ctx.bits, "h": ctx.bits}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.linear(concat_features(features))
        return {"u": straight_through_sign(h), "h": h}
