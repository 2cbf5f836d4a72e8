"""Pairwise likelihood losses: DPSH's against a memory of every training code, and
HashNet's class-balanced one inside the batch with its tanh continuation.

Both score a pair (i, j) with the inner product ``theta_ij`` of its codes by the negative
log-likelihood of its similarity ``s_ij`` (1: same identity) under ``sigmoid(theta_ij)``:

    nll(theta, s) = log(1 + exp(theta)) - s * theta

- ``dpsh-likelihood`` (Li et al., IJCAI 2016; DeepHash-pytorch ``DPSHLoss``): the batch's
  raw codes u (N, K) are first written into a memory U (train_size, K) at the batch's sample
  indices (``context.indices``), then ``theta = u U^T / 2`` against every training code;
  the mean over all N x train_size pairs, where never-seen memory rows (zero codes, no
  identity) contribute log 2 with no gradient, as the reference's zero-initialised U does.
- ``hashnet-pairwise`` (Cao et al., ICCV 2017; DeepHash-pytorch ``HashNetLoss``):
  ``z = tanh(scale * u)``, ``theta = alpha * z z^T`` over the batch's N x N pairs,
  similar pairs weighted S / S1 and dissimilar ones S / S0 (S1, S0: their counts, S = N^2),
  summed and divided by S. The continuation ``scale = sqrt(stage + 1)`` grows by one stage
  every ``step_continuation`` of the reference's ``published_epochs`` epochs
  (``schedule="budget"``: the same fractions of the run's step budget, equal to the
  reference at its budget) or every ``step_continuation`` epochs (``schedule="epochs"``).

The memory lives in buffers (saved with the checkpoints, never optimised), updated in place;
the scale is computed from the step context's tensors, so a CUDA graph can capture the step.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, LossPart, StepContext


def pairwise_nll(theta: torch.Tensor, similar: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(theta)) - s * theta`` element-wise, computed stably.

    >>> [round(v, 4) for v in pairwise_nll(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])).tolist()]
    [0.6931, 2.1269]
    """
    return F.softplus(theta) - similar * theta


class DPSHLikelihood(LossPart):
    """DPSH's pairwise likelihood of the batch's codes against a memory of every training code."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int]) -> None:
        super().__init__()
        if ctx.train_size < 1:
            raise BenchError("loss 'dpsh-likelihood' keeps a code per training sample and needs the "
                             "training set's size; train it through bench run")
        self.register_buffer("memory_codes", torch.zeros(ctx.train_size, ctx.bits))
        self.register_buffer("memory_labels", torch.full((ctx.train_size,), -1, dtype=torch.int64))

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        u = outputs["u"].float()
        with torch.no_grad():  # the reference refreshes the batch's rows before the loss
            self.memory_codes.index_copy_(0, context.indices, u.detach())
            self.memory_labels.index_copy_(0, context.indices, context.labels)
        theta = 0.5 * u @ self.memory_codes.T
        similar = (context.labels[:, None] == self.memory_labels[None, :]).float()
        return pairwise_nll(theta, similar).mean()


class HashNetPairwise(LossPart):
    """HashNet's class-balanced pairwise likelihood of ``tanh(scale * u)`` in the batch."""

    def __init__(
        self,
        ctx: BuildContext,
        output_dims: dict[str, int],
        alpha: float = 0.1,
        step_continuation: int = 20,
        published_epochs: int = 150,
        schedule: Literal["budget", "epochs"] = "budget",
    ) -> None:
        super().__init__()
        if step_continuation < 1 or published_epochs < 1 or schedule not in ("budget", "epochs"):
            raise BenchError(
                f"loss 'hashnet-pairwise': step_continuation={step_continuation}, published_epochs="
                f"{published_epochs}, schedule='{schedule}'; use positive counts and budget|epochs"
            )
        self.alpha = float(alpha)
        self.step_continuation = int(step_continuation)
        self.published_epochs = int(published_epochs)
        self.schedule = schedule

    def scale(self, context: StepContext) -> torch.Tensor:
        """``sqrt(stage + 1)`` for the step's continuation stage (a 0-dim float tensor).

        >>> part = HashNetPairwise(BuildContext(8, 2, (3, 8, 8)), {"u": 8})
        >>> ctx = StepContext.of(torch.tensor([0, 1]))
        >>> float(part.scale(ctx)), float(part.scale(StepContext(ctx.labels, ctx.indices, ctx.epoch, torch.tensor(20), 150)))
        (1.0, 1.4142135381698608)
        """
        if self.schedule == "epochs":
            stage = (context.epoch - 1) // self.step_continuation
        else:
            stage = (context.step * self.published_epochs) // (context.total_steps * self.step_continuation)
        return (stage + 1).float().sqrt()

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        z = torch.tanh(self.scale(context) * outputs["u"].float())
        similar = (context.labels[:, None] == context.labels[None, :]).float()
        nll = pairwise_nll(self.alpha * z @ z.T, similar)
        n_similar = similar.sum()
        n_pairs = float(similar.numel())
        n_dissimilar = (n_pairs - n_similar).clamp(min=1.0)  # 0 only when no pair uses its weight
        weight = torch.where(similar > 0, n_pairs / n_similar, n_pairs / n_dissimilar)
        return (nll * weight).sum() / n_pairs
