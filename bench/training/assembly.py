"""Assemble a deep method's parts into a model, a composite loss and an optimizer."""

from __future__ import annotations

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, Outputs
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

    def __init__(self, terms: list[tuple[str, float, nn.Module]]) -> None:
        super().__init__()
        self.names = [name for name, _, _ in terms]
        self.weights = {name: weight for name, weight, _ in terms}
        self.parts = nn.ModuleDict({name: part for name, _, part in terms})

    def forward(self, outputs: Outputs, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {name: self.parts[name](outputs, labels) for name in self.names}
        total = sum(self.weights[n] * v for n, v in values.items())
        return total, values

    @torch.no_grad()
    def after_step(self, outputs: Outputs, labels: torch.Tensor) -> None:
        for part in self.parts.values():
            hook = getattr(part, "after_step", None)
            if hook is not None:
                hook(outputs, labels)


def build_parts(
    host: PluginHost, config: DeepMethodConfig, ctx: BuildContext
) -> tuple[HashingModel, CompositeLoss]:
    """Build backbone, head and loss parts from the registries."""
    backbone = host.backbones.build(config.backbone.name, ctx, **config.backbone.options)
    feature_dims = dict(getattr(backbone, "feature_dims", {}))
    if not feature_dims:
        raise BenchError(f"backbone '{config.backbone.name}' does not expose feature_dims")
    head = host.heads.build(config.head.name, ctx, feature_dims, **config.head.options)
    output_dims = dict(getattr(head, "output_dims", {"u": ctx.bits}))
    output_dims.update({FEATURE_PREFIX + k: d for k, d in feature_dims.items()})
    terms = []
    for term in config.losses:
        if term.name in {t[0] for t in terms}:
            raise BenchError(f"loss part '{term.name}' listed twice; give it once with its weight")
        part = host.losses.build(term.name, ctx, output_dims, **term.options)
        terms.append((term.name, term.weight, part))
    if not terms:
        raise BenchError("a deep method needs at least one loss part; add one with --loss NAME")
    return HashingModel(backbone, head), CompositeLoss(terms)


def kernel_parameters(*modules: nn.Module) -> set[int]:
    """ids of conv/linear kernels (and of any ``kernel_parameters()`` a module declares)."""
    ids: set[int] = set()
    for root in modules:
        for m in root.modules():
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
                ids.add(id(m.weight))
            extra = getattr(m, "kernel_parameters", None)
            if callable(extra):
                ids.update(id(p) for p in extra())
    return ids


def build_optimizer(
    spec: OptimizerSpec, *modules: nn.Module, fused: bool | None = None
) -> torch.optim.Optimizer:
    """The optimizer over every parameter of ``modules``; weight decay per ``decay_scope``;
    ``fused``: torch's fused kernels (see :mod:`bench.training.acceleration`)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    if spec.weight_decay and spec.decay_scope == "kernels":
        kernels = kernel_parameters(*modules)
        groups = [
            {"params": [p for p in params if id(p) in kernels], "weight_decay": spec.weight_decay},
            {"params": [p for p in params if id(p) not in kernels], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": params, "weight_decay": spec.weight_decay}]
    if spec.name == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps, fused=fused)
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps, fused=fused)
    return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, fused=fused)


def build_scheduler(
    spec: ScheduleSpec, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule; step milestones are fractions of ``total_steps``."""
    if spec.name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    milestones = sorted({max(1, round(f * total_steps)) for f in spec.milestones})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=spec.gamma)
