"""Center-clustering loss with learnable centres and the centre-loss update rule.

As in DCBH's released code (``C_loss`` in ``utils/Functions.py``): centres ``(C, d)``
are Glorot-uniform initialised and trainable; the loss is
``sum_i 0.5 * ||f_i - c_{y_i}||^2`` over the batch (``tf.nn.l2_loss``; ``reduction="mean"``
divides by the batch size); after each step every centre that appears in the batch also
moves by the centre-loss rule (Wen et al., ECCV 2016, with rate 1)::

    c_j <- c_j - sum_{i: y_i = j} (c_j - f_i) / (1 + n_j)

The TF graph computes the rule's differences and the gradient from the same read of the
centres and applies both (``scatter_sub`` and Adam's step) to the variable. Here the
differences use the centres the forward pass saw (kept from ``forward``), so the Adam step
and the rule add up the same way although PyTorch runs the rule after the optimizer.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, LossPart, StepContext


def center_rule_delta(
    centers: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """The centre-loss rule's change ``-sum_{i:y_i=j} (c_j - f_i) / (1 + n_j)`` for every
    centre (zero for classes absent from the batch); ``centers`` are the values the batch saw.

    >>> c = torch.zeros(2, 1)
    >>> center_rule_delta(c, torch.tensor([[2.0], [4.0]]), torch.tensor([0, 0])).tolist()
    [[2.0], [0.0]]
    """
    # index_add_, not bincount: on CUDA bincount reads the labels' maximum back to the host
    counts = torch.zeros(centers.shape[0], dtype=features.dtype, device=features.device)
    counts.index_add_(0, labels, torch.ones_like(labels, dtype=features.dtype))
    diff = (centers[labels] - features) / (1.0 + counts[labels]).unsqueeze(1)
    return torch.zeros_like(centers).index_add_(0, labels, -diff)


class CenterLoss(LossPart):
    """Center-clustering loss on one output (default the descriptor ``f``), learnable
    centres plus the centre-loss update rule after each step."""

    def __init__(
        self,
        ctx: BuildContext,
        output_dims: dict[str, int],
        source: str = "f",
        reduction: Literal["sum", "mean"] = "sum",
        update: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        if source not in output_dims:
            raise BenchError(
                f"loss 'center' needs the model output '{source}', but the model gives "
                f"{', '.join(sorted(output_dims))}; choose a head that exposes it or set "
                "--set loss.center.source=NAME"
            )
        if reduction not in ("sum", "mean"):
            raise BenchError(f"loss 'center': reduction '{reduction}' is unknown; use sum or mean")
        self.source = source
        self.reduction = reduction
        self.update = update
        centers = nn.init.xavier_uniform_(torch.empty(ctx.num_classes, output_dims[source]))
        self.centers = nn.Parameter(centers, requires_grad=trainable)
        self._seen: torch.Tensor | None = None  # centres of the last batch, as forward read them

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        labels = context.labels
        features = outputs[self.source].float()
        batch_centers = self.centers[labels]
        self._seen = batch_centers.detach().clone()
        total = 0.5 * (features - batch_centers).pow(2).sum()
        return total / len(labels) if self.reduction == "mean" else total

    @torch.no_grad()
    def after_step(self, outputs: dict[str, torch.Tensor], context: StepContext) -> None:
        """Move the batch's centres by the centre-loss rule (when ``update`` is on)."""
        if not self.update:
            return
        labels = context.labels
        seen = self.centers.detach().clone()
        if self._seen is not None and len(self._seen) == len(labels):
            seen[labels] = self._seen
        delta = center_rule_delta(seen, outputs[self.source].float(), labels)
        self.centers.add_(delta)
        self._seen = None
