"""Quantization loss: pulls relaxed bits towards +-alpha."""

from __future__ import annotations

import torch

from bench.api.interfaces import BuildContext, LossPart, StepContext


class QuantizationLoss(LossPart):
    """``mean | alpha - |u| |`` over batch and bits (DCBH alpha = 0.5, DDH alpha = 1)."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        return torch.mean(torch.abs(self.alpha - torch.abs(outputs["u"].float())))
