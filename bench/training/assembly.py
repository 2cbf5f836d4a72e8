"""Assemble a deep method's parts into a model, a composite loss and an optimizer whose
parameter groups carry each part's learning-rate and weight-decay multipliers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from bench.api.contract import check_built
from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, DeclaresKernels, LossPart, Outputs, StepContext
from bench.api.methods import DeepMethodConfig, OptimizerSpec, ScheduleSpec
from bench.api.pluginhost import PluginHost

FEATURE_PREFIX = "feat:"


class HashingModel(nn.Module):
    """``backbone -> head``. Outputs the head's dict plus ``feat:<name>`` features."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        # Mixed precision (set by bench.training.acceleration): the backbone alone runs under autocast
        # in this dtype; its features return to float32, so the head (tanh, u) and losses do not.
        self.autocast_dtype: torch.dtype | None = None

    def forward(self, images: torch.Tensor) -> Outputs:
        if self.autocast_dtype is None:
            features = self.backbone(images)
        else:
            # no weight cache: each weight is cast once per forward anyway, and CUDA graph
            # capture (bench.training.step) does not support autocast's cache
            with torch.autocast(images.device.type, dtype=self.autocast_dtype, cache_enabled=False):
                features = self.backbone(images)
        if isinstance(features, torch.Tensor):
            features = {"out": features}
        if self.autocast_dtype is not None:
            features = {k: v.float() for k, v in features.items()}
        out = dict(self.head(features))
        out.update({FEATURE_PREFIX + k: v for k, v in features.items()})
        return out


class CompositeLoss(nn.Module):
    """Weighted sum of named loss parts; returns the total and each part (unweighted)."""

    def __init__(self, terms: list[tuple[str, float, LossPart]]) -> None:
        super().__init__()
        self.names = [name for name, _, _ in terms]
        self.weights = {name: weight for name, weight, _ in terms}
        self.parts = nn.ModuleDict({name: part for name, _, part in terms})

    def forward(self, outputs: Outputs, context: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {name: self.parts[name](outputs, context) for name in self.names}
        total = sum(self.weights[n] * v for n, v in values.items())
        return total, values

    @torch.no_grad()
    def after_step(self, outputs: Outputs, context: StepContext) -> None:
        for part in self.parts.values():
            part.after_step(outputs, context)


def build_parts(
    host: PluginHost, config: DeepMethodConfig, ctx: BuildContext, backbone: nn.Module | None = None
) -> tuple[HashingModel, CompositeLoss]:
    """Build backbone, head and loss parts from the registries, each checked against the
    contract (:func:`bench.api.contract.check_built`). ``backbone``: one built already, used
    instead of the config's (a frozen backbone's feature table)."""
    if backbone is None:
        backbone = host.backbones.build(config.backbone.name, ctx, **config.backbone.options)
        check_built("backbones", config.backbone.name, backbone, ctx)
    feature_dims = dict(backbone.feature_dims)
    head = host.heads.build(config.head.name, ctx, feature_dims, **config.head.options)
    check_built("heads", config.head.name, head, ctx)
    output_dims = dict(head.output_dims)
    output_dims.update({FEATURE_PREFIX + k: d for k, d in feature_dims.items()})
    terms = []
    for term in config.losses:
        if term.name in {t[0] for t in terms}:
            raise BenchError(f"loss part '{term.name}' listed twice; give it once with its weight")
        part = host.losses.build(term.name, ctx, output_dims, **term.options)
        check_built("losses", term.name, part, ctx)
        terms.append((term.name, term.weight, part))
    if not terms:
        raise BenchError("a deep method needs at least one loss part; add one with --loss NAME")
    return HashingModel(backbone, head), CompositeLoss(terms)


def kernel_parameters(*modules: nn.Module) -> set[int]:
    """ids of conv/linear kernels (and of the kernels a :class:`DeclaresKernels` layer names)."""
    ids: set[int] = set()
    for root in modules:
        for m in root.modules():
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
                ids.add(id(m.weight))
            if isinstance(m, DeclaresKernels):
                ids.update(id(p) for p in m.kernel_parameters())
    return ids


@dataclass(frozen=True)
class RatedPart:
    """A part whose parameters train at ``lr_mult`` times the learning rate and
    ``decay_mult`` times the weight decay."""

    module: nn.Module
    lr_mult: float = 1.0
    decay_mult: float = 1.0


def rated_parts(config: DeepMethodConfig, model: HashingModel, loss: CompositeLoss) -> list[RatedPart]:
    """The backbone, the head and every loss part, with their multipliers from ``config``."""
    parts = [RatedPart(model.backbone, config.backbone.lr_mult, config.backbone.decay_mult),
             RatedPart(model.head, config.head.lr_mult, config.head.decay_mult)]
    return parts + [RatedPart(loss.parts[t.name], t.lr_mult, t.decay_mult) for t in config.losses]


def param_groups(spec: OptimizerSpec, *parts: nn.Module | RatedPart) -> list[dict]:
    """The optimizer's parameter groups: one per (learning rate, weight decay) pair.

    A parameter's rate is ``spec.lr`` times its part's ``lr_mult`` (times
    ``spec.bias_lr_mult`` unless it is a kernel); its decay is ``spec.weight_decay`` times
    its part's ``decay_mult``, or 0 for a non-kernel under ``decay_scope='kernels'``. A
    plain module is a part with multipliers 1. Groups with more weight decay come first and
    keep their parameters in module order, so without multipliers the groups are
    ``[kernels, the rest]`` (or one group), as optimizer checkpoints index them.

    >>> layer = nn.Linear(2, 1)
    >>> [(len(g["params"]), g["lr"], g["weight_decay"]) for g in param_groups(
    ...     OptimizerSpec(lr=0.1, weight_decay=0.5, bias_lr_mult=2.0), RatedPart(layer, decay_mult=0.1))]
    [(1, 0.1, 0.05), (1, 0.2, 0.0)]
    """
    rated = [p if isinstance(p, RatedPart) else RatedPart(p) for p in parts]
    kernels = kernel_parameters(*(part.module for part in rated))
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for part, param in _trainable(rated):
        kernel = id(param) in kernels
        lr = spec.lr * part.lr_mult * (1.0 if kernel else spec.bias_lr_mult)
        decays = kernel or spec.decay_scope == "all"
        decay = spec.weight_decay * part.decay_mult if decays else 0.0
        groups.setdefault((lr, decay), []).append(param)
    ordered = sorted(groups.items(), key=lambda item: -item[0][1])  # stable: module order within ties
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in ordered]


def _trainable(parts: list[RatedPart]) -> Iterator[tuple[RatedPart, nn.Parameter]]:
    """Each trainable parameter once, with the first part that holds it."""
    seen: set[int] = set()
    for part in parts:
        for param in part.module.parameters():
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                yield part, param


def build_optimizer(
    spec: OptimizerSpec, *parts: nn.Module | RatedPart, fused: bool | None = None
) -> torch.optim.Optimizer:
    """The optimizer over every trainable parameter of ``parts``, in the groups of
    :func:`param_groups`; ``fused``: torch's fused kernels (see :mod:`bench.training.acceleration`)."""
    groups = param_groups(spec, *parts)
    if spec.name == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps,
                                amsgrad=spec.amsgrad, fused=fused)
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps,
                                 amsgrad=spec.amsgrad, fused=fused)
    if spec.name == "rmsprop":  # torch has no fused RMSprop: a CUDA-graph step falls back to eager
        return torch.optim.RMSprop(groups, lr=spec.lr, eps=spec.eps, momentum=spec.momentum)
    return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, fused=fused)


def build_scheduler(
    spec: ScheduleSpec, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule; step milestones are fractions of ``total_steps``."""
    if spec.name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    milestones = sorted({max(1, round(f * total_steps)) for f in spec.milestones})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=spec.gamma)
