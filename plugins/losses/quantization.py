"""Quantization loss: pulls relaxed bits towards +-alpha."""

from __future__ import annotations

import torch

from bench.api.interfaces import BuildContext, LossPart, StepContext


class QuantizationLoss(LossPart):
    """``mean | alpha - |u| | ^ power`` over batch and bits (DCBH alpha = 0.5, DDH alpha = 1;
    CSQ alpha = 1, power = 2: ``mean (|u| - 1)^2``)."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], alpha: float = 1.0, power: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.power = power

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        gap = torch.abs(self.alpha - torch.abs(outputs["u"].float()))
        return torch.mean(gap if self.power == 1 else gap.pow(self.power))
