"""A test plugin, installed as a distribution by tests/test_plugin_contract.py: its loss
counts, in a buffer, every training sample it sees in every epoch (from the step context's
indices and epoch) and its head binarises with the straight-through sign."""

import torch
from torch import nn

from bench import hookimpl
from bench.api.interfaces import BuildContext, HashHead, LossPart, StepContext
from bench.api.methods import DeepMethod, DeepMethodConfig, LossTerm, PartSpec, TrainingSpec
from plugins.heads.straight_through import straight_through_sign
from plugins.losses.pairwise import dsh_pairwise_loss

MAX_EPOCHS = 4


class ProbeSignHead(HashHead):
    """Linear layer, then the straight-through sign: ``u`` is exactly the code."""

    def __init__(self, ctx: BuildContext, feature_dims: dict[str, int]) -> None:
        super().__init__()
        self.linear = nn.Linear(sum(feature_dims.values()), ctx.bits)
        self.output_dims = {"u": ctx.bits}

    def forward(self, features):
        return {"u": straight_through_sign(self.linear(torch.cat(list(features.values()), dim=1)))}


class VisitCounter(LossPart):
    """DSH's pairwise loss; ``visits[epoch, i]`` counts the steps that saw training sample
    ``i`` in ``epoch`` and ``labels_seen[i]`` is its label as the step context gave it."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int]) -> None:
        super().__init__()
        self.register_buffer("visits", torch.zeros(MAX_EPOCHS + 1, ctx.train_size, dtype=torch.int64))
        self.register_buffer("labels_seen", torch.full((ctx.train_size,), -1, dtype=torch.int64))
        self.margin = 2.0 * ctx.bits

    def forward(self, outputs, context: StepContext):
        epochs = context.epoch.expand_as(context.indices)
        self.visits.index_put_((epochs, context.indices), torch.ones_like(context.indices), accumulate=True)
        self.labels_seen.index_copy_(0, context.indices, context.labels)
        return dsh_pairwise_loss(outputs["u"].float(), context.labels, self.margin, 0.01)


class ProbeConfig(DeepMethodConfig):
    backbone: PartSpec = PartSpec(name="dsh-net")
    head: PartSpec = PartSpec(name="probe-sign")
    losses: list[LossTerm] = [LossTerm(name="visit-counter")]
    training: TrainingSpec = TrainingSpec(batch_size=16, sampler="shuffle", selection="last")


class ProbeHash(DeepMethod):
    """The probe method (tests only)."""

    Config = ProbeConfig


@hookimpl
def register_heads(register):
    register("probe-sign", ProbeSignHead)


@hookimpl
def register_losses(register):
    register("visit-counter", VisitCounter)


@hookimpl
def register_methods(register):
    register("probe-hash", ProbeHash())
