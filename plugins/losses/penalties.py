"""Penalties that pull a relaxed code towards binary values, one per published form.

- ``sign-l2``: ``mean (u - sign(u))^2`` over batch and bits (DPSH's quantization term,
  ``torch.sign`` with sign(0) = 0 as the reference);
- ``cubic``: ``mean | |h| - 1 |^3`` (GreedyHash's penalty on the pre-sign output ``h`` of a
  straight-through head, ``source="h"`` by default).
"""

from __future__ import annotations

import torch

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, LossPart, StepContext


def _check_source(name: str, source: str, output_dims: dict[str, int]) -> str:
    if source not in output_dims:
        raise BenchError(f"loss '{name}' reads the output '{source}', but the head gives "
                         f"{', '.join(sorted(output_dims))}; choose a head that exposes it")
    return source


class SignDistanceLoss(LossPart):
    """``mean (u - sign(u))^2``: the squared distance of ``u`` to its sign (DPSH)."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], source: str = "u") -> None:
        super().__init__()
        self.source = _check_source("sign-l2", source, output_dims)

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        u = outputs[self.source].float()
        return (u - u.sign()).pow(2).mean()


class CubicLoss(LossPart):
    """``mean | |h| - 1 |^3`` on the pre-sign output (GreedyHash)."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], source: str = "h") -> None:
        super().__init__()
        self.source = _check_source("cubic", source, output_dims)

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        return (outputs[self.source].float().abs() - 1).pow(3).abs().mean()
