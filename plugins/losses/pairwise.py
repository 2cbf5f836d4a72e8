"""DSH's pairwise loss (Liu et al., CVPR 2016; official Caffe ``HashingLossLayer``).

Over the unordered pairs i < j of a mini-batch of relaxed codes b (N, K), with
y_ij = 0 for the same identity and 1 otherwise:

    L = 1 / (N (N-1)) * sum_{i<j} [ 1/2 (1 - y) ||b_i - b_j||^2
                                   + 1/2 y max(m - ||b_i - b_j||^2, 0) ]
      + alpha / N * sum_i || |b_i| - 1 ||_1

margin m = 2K and alpha = 0.01 by default. The pair term is divided by the number of
*ordered* pairs N(N-1) although it sums unordered ones, and the regulariser by N: that
is the normalisation of the released layer, whose hand-written gradient is exactly the
gradient of L above. (The layer *reports* the pair terms without the 1/2; only that
displayed value differs, so we return the L whose gradient is trained on.)
"""

from __future__ import annotations

import torch

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, LossPart, StepContext


def dsh_pairwise_loss(
    b: torch.Tensor, labels: torch.Tensor, margin: float, alpha: float
) -> torch.Tensor:
    """DSH loss of codes ``b`` (N, K) with identity ``labels`` (N,); see the module docstring.

    >>> b = torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    >>> # pairs: (0,1) dissimilar d=4 -> 1/2 max(4-4, 0) = 0; (0,2) similar d=0; (1,2) dissimilar -> 0
    >>> float(dsh_pairwise_loss(b, torch.tensor([0, 1, 0]), margin=4.0, alpha=0.01))
    0.0
    >>> # (0,1) similar d=4 -> 2; (0,2) dissimilar d=0 -> 1/2 (4 - 0) = 2; (1,2) -> 0; sum 4 / (3 * 2)
    >>> round(float(dsh_pairwise_loss(b, torch.tensor([0, 0, 1]), margin=4.0, alpha=0.0)), 4)
    0.6667
    """
    n = b.shape[0]
    reg = alpha * (b.abs() - 1.0).abs().sum() / max(n, 1)
    if n < 2:
        return reg
    dist = (b[:, None, :] - b[None, :, :]).pow(2).sum(dim=2)  # exact; N*N*K floats is small
    same = labels[:, None] == labels[None, :]
    pair = torch.where(same, dist, torch.relu(margin - dist))
    # triu (not a boolean mask, whose indexing waits for the device) keeps the pairs i < j
    return 0.5 * torch.triu(pair, diagonal=1).sum() / (n * (n - 1)) + reg


class DSHPairwiseLoss(LossPart):
    """DSH pairwise loss on ``u``: contrastive with margin m (default 2K) + alpha * L1 to +-1."""

    def __init__(
        self, ctx: BuildContext, output_dims: dict[str, int], margin: float | None = None, alpha: float = 0.01
    ) -> None:
        super().__init__()
        if margin is not None and margin <= 0:
            raise BenchError(f"loss 'dsh-pairwise': margin={margin}; use a positive margin (DSH: 2K)")
        self.margin = float(2 * ctx.bits if margin is None else margin)
        self.alpha = float(alpha)

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        return dsh_pairwise_loss(outputs["u"].float(), context.labels, self.margin, self.alpha)
