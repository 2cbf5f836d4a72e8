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

from bench.api.methods import TrainingSpec
from bench.data.preprocess import Normaliser, augment
from bench.training.acceleration import Acceleration, LossMeter
from bench.training.assembly import CompositeLoss, HashingModel
from bench.training.batching import BatchSource
from bench.training.step import TrainStep, make_train_step


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
    step_status: str = "eager"  # how the steps ran: eager, or captured in a CUDA graph


@dataclass
class LoopState:
    """Where the loop stands after an epoch: what a resume checkpoint stores and restarts from."""

    epoch: int = 0
    step: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    best_state: dict[str, dict[str, torch.Tensor]] | None = None
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
    start: LoopState | None = None,
    on_epoch_end: Callable[[LoopState], None] = lambda state: None,
    accel: Acceleration | None = None,
    train_step: TrainStep | None = None,
) -> TrainResult:
    """Train ``model`` and ``loss`` for ``spec.epochs`` epochs; return the selected weights.

    ``start`` continues an interrupted run (model, optimizer, scheduler and RNG states are
    restored by the caller); ``on_epoch_end`` receives the loop state after every epoch.
    ``accel`` (already applied to the model and optimizer) sets the input memory format,
    whether the step is captured in a CUDA graph and how often the loss is read back to the
    host (``on_step`` is called at those steps). ``train_step`` replaces the step built from
    them (a caller that trains in several calls keeps one, and with it one graph); its
    :attr:`~bench.training.step.TrainStep.status` is returned in the result.
    """
    start = start or LoopState()
    best_score, best_epoch, best_state = start.best_score, start.best_epoch, start.best_state
    history: list[dict[str, float]] = list(start.history)
    step = start.step
    if train_step is None:
        train_step = make_train_step(model, loss, optimizer, normaliser,
                                     memory_format=accel.memory_format if accel else torch.contiguous_format,
                                     cuda_graph=accel.cuda_graph if accel else False)
    for epoch in range(start.epoch + 1, spec.epochs + 1):
        model.train()
        loss.train()
        meter = LossMeter(train_step.names, accel.sync_every if accel else 1)
        for images, labels in source:
            images = augment(images, augmentation, source.generator)
            value = meter.add(train_step(images, labels))  # None between host read-backs
            step += 1
            scheduler.step()
            if value is not None:
                if not math.isfinite(value):
                    late = f" (the loss is read every {meter.sync_every} steps)" if meter.sync_every > 1 else ""
                    raise RunFailed(f"non-finite loss at step {step}{late}")
                on_step(step, value)
        metrics = meter.means()
        if not all(math.isfinite(v) for v in metrics.values()):
            raise RunFailed(f"non-finite loss in epoch {epoch} (by step {step})")
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
        on_epoch_end(LoopState(epoch, step, best_score, best_epoch, best_state, history))
    if best_state is None:  # selection by validation without a validator: keep the last
        best_state, best_epoch, best_score = _snapshot(model, loss), spec.epochs, float("nan")
    return TrainResult(copy.deepcopy(best_state), best_epoch, best_score, step, history, train_step.status)
