"""The harness's training loop for deep methods.

It trains for the protocol's epoch budget, logs each loss part per epoch, validates
every ``validate_every`` epochs on the validation split only, keeps the selected
weights (best validation mAP, lowest training loss, or last) and stops a run whose loss
is not finite.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench.assembly import CompositeLoss, HashingModel
from bench.batching import BatchSource
from bench.methods import TrainingSpec
from bench.preprocess import Normaliser, augment


class RunFailed(Exception):
    """A run that cannot go on (its reason is logged as the run's failure tag)."""


@dataclass
class TrainResult:
    """The selected weights and what led to them."""

    state: dict[str, dict[str, torch.Tensor]]
    selected_epoch: int
    selection_score: float
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def _snapshot(model: torch.nn.Module, loss: torch.nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "loss": {k: v.detach().cpu().clone() for k, v in loss.state_dict().items()},
    }


def train(
    model: HashingModel,
    loss: CompositeLoss,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    source: BatchSource,
    normaliser: Normaliser,
    spec: TrainingSpec,
    *,
    augmentation: str = "none",
    validate: Callable[[], float] | None = None,
    log_metrics: Callable[[dict[str, float], int], None] = lambda m, s: None,
    on_step: Callable[[int, float], None] = lambda step, value: None,
) -> TrainResult:
    """Train ``model`` and ``loss`` for ``spec.epochs`` epochs; return the selected weights."""
    best_score, best_epoch, best_state = -math.inf, 0, None
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(1, spec.epochs + 1):
        model.train()
        loss.train()
        sums: dict[str, float] = {}
        batches = 0
        for images, labels in source:
            x = augment(normaliser.apply(images), augmentation, source.generator)
            outputs = model(x)
            total, parts = loss(outputs, labels)
            step += 1
            if not torch.isfinite(total):
                raise RunFailed(f"non-finite loss at step {step}")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            scheduler.step()
            loss.after_step({k: v.detach() for k, v in outputs.items()}, labels)
            batches += 1
            sums["loss/total"] = sums.get("loss/total", 0.0) + float(total.detach())
            for name, value in parts.items():
                sums[f"loss/{name}"] = sums.get(f"loss/{name}", 0.0) + float(value.detach())
            on_step(step, float(total.detach()))
        metrics = {k: v / batches for k, v in sums.items()}
        score = None
        if spec.selection == "val_map" and validate is not None:
            if epoch % spec.validate_every == 0 or epoch == spec.epochs:
                score = validate()
                metrics["val_map"] = score
        elif spec.selection == "train_loss":
            score = -metrics["loss/total"]
        elif epoch == spec.epochs:
            score = float(epoch)
        if score is not None and score > best_score:
            best_score, best_epoch, best_state = score, epoch, _snapshot(model, loss)
        log_metrics(metrics, epoch)
        history.append({"epoch": epoch, **metrics})
    if best_state is None:  # selection by validation without a validator: keep the last
        best_state, best_epoch, best_score = _snapshot(model, loss), spec.epochs, float("nan")
    return TrainResult(copy.deepcopy(best_state), best_epoch, best_score, step, history)
