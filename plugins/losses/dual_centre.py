"""DCDH's two loss parts (Zhang et al., Pattern Recognition 2021), as the released
``mzhang367/DCDH-PyTorch`` computes them (``loss.py`` ``DualClasswiseLoss``,
``dcdh_train.py``'s training step).

``dcdh-centres``: learnable class centres ``c`` (C, K), ``randn``-initialised, and

- a Gaussian softmax over squared distances, ``p_ij = exp(-sigma/2 ||u_i - c_j||^2) /
  (sum_j exp(...) + 1e-6)``, loss ``-mean_i log(p_{i,y_i} + 1e-6)`` (sigma 0.25; the
  released epsilons and the unshifted exponentials are kept, so the loss saturates at
  ``-log 1e-6`` where every exponential underflows, as released);
- plus ``separation`` (0.1) times the centre-separation term
  ``sum_{j,l} softplus(theta_jl) / (C (C - 1))`` with ``theta = K/2 cos(c_j, c_l)`` and a
  zeroed diagonal (the diagonal's ``C log 2`` stays in the sum, as released).

``dcdh-regression``: the regression of ``u`` to binary targets from a per-batch
least-squares fit, with the one-hot labels ``Y`` (N, C)::

    W = pinv(Y^T Y) Y^T sign(u);  B = sign(Y W + eta u);  loss = sum ||u_i - B_i||^2 / N

For one-hot ``Y``, ``Y^T Y`` is diagonal with the class counts, so ``pinv`` is
``1 / n_j`` for the classes in the batch (0 for the others) and ``Y W`` is each sample's
class mean of ``sign(u)`` in the batch: computed so, without an SVD or a host read (equal
to the released ``torch.pinverse`` to rounding; the test compares both). ``B`` carries no
gradient. The released step weights this term by the same ``eta`` (0.01): LossTerm weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.api.interfaces import BuildContext, LossPart, StepContext


class DualCentreLoss(LossPart):
    """Gaussian-softmax classification to learnable centres plus their separation."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], sigma: float = 0.25,
                 separation: float = 0.1) -> None:
        super().__init__()
        self.sigma, self.separation = sigma, separation
        self.centres = nn.Parameter(torch.randn(ctx.num_classes, ctx.bits))

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        u = outputs["u"].float()
        c = self.centres
        dist = u.pow(2).sum(1, keepdim=True) + c.pow(2).sum(1).unsqueeze(0) - 2 * u @ c.T
        kernel = torch.exp(-0.5 * self.sigma * dist)
        p = kernel / (kernel.sum(dim=1, keepdim=True) + 1e-6)
        fit = -torch.log(p.gather(1, context.labels.unsqueeze(1)) + 1e-6).sum() / len(u)
        classes, bits = c.shape
        normed = F.normalize(c, dim=1)
        theta = (0.5 * bits * normed @ normed.T) * (1 - torch.eye(classes, device=c.device))
        softplus = torch.log(1 + torch.exp(-theta.abs())) + theta.clamp(min=0)
        return fit + self.separation * softplus.sum() / (classes * (classes - 1))


class CodeRegressionLoss(LossPart):
    """``sum ||u - B||^2 / N`` to the batch's least-squares binary targets ``B``."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], eta: float = 0.01) -> None:
        super().__init__()
        self.eta = eta
        self.num_classes = ctx.num_classes

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        u = outputs["u"].float()
        labels = context.labels
        with torch.no_grad():
            sums = torch.zeros(self.num_classes, u.shape[1], device=u.device).index_add_(0, labels, torch.sign(u))
            counts = torch.zeros(self.num_classes, device=u.device).index_add_(0, labels, torch.ones_like(u[:, 0]))
            fitted = sums[labels] / counts[labels].unsqueeze(1)  # (Y W)_i: class mean of sign(u)
            targets = torch.sign(fitted + self.eta * u)
        return (u - targets).pow(2).sum() / len(u)
