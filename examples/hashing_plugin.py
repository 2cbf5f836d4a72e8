"""A plugin that uses what published hashing methods need from the harness: a head that
binarises itself with a straight-through gradient (GreedyHash), a loss part that keeps a
memory of every training code in buffers, indexed by the step context's sample indices
(DPSH), with a weight that grows on the step context's schedule (as HashNet grows its
tanh scale), and a backbone trained at a tenth of the learning rate (OrthoHash).

Install it as any plugin (entry point ``memory = "hashing_plugin"``); then
``bench run --method memory-hash --bits 16`` trains it. The test suite loads this file.
"""

import torch
import torch.nn.functional as F
from torch import nn

from bench import hookimpl
from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, HashHead, LossPart, StepContext
from bench.api.methods import DeepMethod, DeepMethodConfig, LossTerm, PartSpec, TrainingSpec
from plugins.heads.straight_through import straight_through_sign


class SignHead(HashHead):
    """``h = W x + b`` on the concatenated features; ``u = sign(h)`` with a straight-through
    gradient (GreedyHash's hash layer). Both are outputs: ``u`` is the code, ``h`` its
    relaxation."""

    def __init__(self, ctx: BuildContext, feature_dims: dict[str, int]) -> None:
        super().__init__()
        self.linear = nn.Linear(sum(feature_dims.values()), ctx.bits)
        self.output_dims = {"u": ctx.bits, "h": ctx.bits}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.linear(torch.cat([features[k].flatten(1) for k in sorted(features)], dim=1))
        return {"u": straight_through_sign(h), "h": h}


class MemoryPairwiseLoss(LossPart):
    """DPSH's pairwise likelihood between the batch's codes and a memory of every training
    code, plus GreedyHash's ``| |h| - 1 |^3`` penalty, weighted ``eta * step / total_steps``.

    The memory lives in buffers (saved with every checkpoint, never optimised): the codes
    and labels of each training sample, written at the batch's ``context.indices``
    (label -1: not seen yet, left out of the likelihood). Everything is computed with
    tensors, in place, without host reads, so a CUDA graph can capture the step.
    """

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], eta: float = 0.1) -> None:
        super().__init__()
        if ctx.train_size < 1 or "h" not in output_dims:
            raise BenchError("loss 'memory-pairwise' needs the training set's size and the output 'h'; "
                             "train it through bench run with the 'sign-fc' head")
        self.eta = eta
        self.register_buffer("memory_codes", torch.zeros(ctx.train_size, ctx.bits))
        self.register_buffer("memory_labels", torch.full((ctx.train_size,), -1, dtype=torch.int64))

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        u, h = outputs["u"].float(), outputs["h"].float()
        with torch.no_grad():  # DPSH refreshes the batch's entries before computing the loss
            self.memory_codes.index_copy_(0, context.indices, u.detach())
            self.memory_labels.index_copy_(0, context.indices, context.labels)
        seen = (self.memory_labels >= 0).float()
        theta = 0.5 * u @ self.memory_codes.T
        similar = (context.labels[:, None] == self.memory_labels[None, :]).float()
        likelihood = ((F.softplus(theta) - similar * theta) * seen).sum() / (seen.sum() * len(u))
        schedule = (context.step + 1).float() / context.total_steps  # grows from ~0 to 1
        return likelihood + self.eta * schedule * (h.abs() - 1).abs().pow(3).mean()


class MemoryHashConfig(DeepMethodConfig):
    """Defaults of the method; every field can be changed with --set."""

    backbone: PartSpec = PartSpec(name="dsh-net", lr_mult=0.1)
    head: PartSpec = PartSpec(name="sign-fc")
    losses: list[LossTerm] = [LossTerm(name="memory-pairwise")]
    training: TrainingSpec = TrainingSpec(batch_size=64, selection="last")


class MemoryHash(DeepMethod):
    """DSH's small net, a straight-through sign layer and a memory-based pairwise loss."""

    Config = MemoryHashConfig


@hookimpl
def register_heads(register):
    register("sign-fc", SignHead)


@hookimpl
def register_losses(register):
    register("memory-pairwise", MemoryPairwiseLoss)


@hookimpl
def register_methods(register):
    register("memory-hash", MemoryHash())
