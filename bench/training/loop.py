"""The harness's training loop for deep methods.

It trains for the protocol's epoch budget (or the method's step budget,
``training.iterations``), logs each loss part per epoch, validates every
``validate_every`` epochs on the validation split only, keeps the selected weights (best
validation mAP, lowest training loss, or last) and stops a run whose loss is not finite.
The released loops' options of :class:`~bench.api.methods.TrainingSpec` (early stopping,
restoring the selected checkpoint every N epochs, the L2 penalty in the selection loss)
act here; the extra BatchNorm pass acts in the step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench.api.methods import DeepMethodConfig, TrainingSpec
from bench.data.preprocess import Normaliser, augment
from bench.training.acceleration import Acceleration
from bench.training.assembly import (
    CompositeLoss,
    HashingModel,
    build_optimizer,
    build_scheduler,
    rated_parts,
)
from bench.training.batching import BatchSource
from bench.training.meter import LossMeter
from bench.training.step import TrainStep, make_train_step

State = dict[str, dict[str, torch.Tensor]]


class RunFailed(Exception):
    """A run that cannot go on (its reason is logged as the run's failure tag)."""


@dataclass
class TrainResult:
    """The selected weights and what led to them."""

    state: State
    selected_epoch: int
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
    best_state: State | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    wait: int = 0  # epochs since the selection score last improved (early stopping)


def _ignore(*args: object) -> None:
    """The default callback: nothing to do."""


@dataclass(frozen=True)
class TrainCallbacks:
    """What the trainer tells its caller, and asks it.

    - ``validate()``: the validation mAP, asked every ``validate_every`` epochs when the
      selection is ``val_map`` (``None``: no validation split; the last weights are kept);
    - ``log_metrics(metrics, epoch)``: each epoch's mean losses (and ``val_map``);
    - ``on_step(step, total)``: at every host read of the loss (every ``sync_every`` steps);
    - ``on_epoch_end(state)``: the loop state after every epoch (for resume checkpoints).
    """

    validate: Callable[[], float] | None = None
    log_metrics: Callable[[dict[str, float], int], None] = _ignore
    on_step: Callable[[int, float], None] = _ignore
    on_epoch_end: Callable[[LoopState], None] = _ignore


def step_budget(spec: TrainingSpec, batches_per_epoch: int) -> int:
    """A run's step budget: ``iterations``, else every batch of every epoch.

    >>> step_budget(TrainingSpec(epochs=3), 10), step_budget(TrainingSpec(epochs=3, iterations=25), 10)
    (30, 25)
    """
    return spec.iterations or batches_per_epoch * spec.epochs


@dataclass
class Trainer:
    """Trains a model and its loss parts for ``spec.epochs`` epochs with one training step
    (eager or graphed, :func:`bench.training.step.make_train_step`): batches from
    ``source`` (augmented here), the scheduler stepped after every step, the loss read back
    every ``sync_every`` steps (:class:`~bench.training.meter.LossMeter`). A caller that
    trains in several calls keeps one trainer, and with it one step and its graphs."""

    step: TrainStep
    scheduler: torch.optim.lr_scheduler.LRScheduler
    source: BatchSource  # or anything that yields batches and has the source's .generator
    spec: TrainingSpec
    sync_every: int
    augmentation: str = "none"

    @classmethod
    def for_config(cls, config: DeepMethodConfig, model: HashingModel, loss: CompositeLoss,
                   source: BatchSource, normaliser: Normaliser, accel: Acceleration,
                   augmentation: str) -> Trainer:
        """The trainer of a deep method's ``config``: the optimizer over its parts with their
        multipliers, the schedule over the run's step budget, the step ``accel`` asks for
        (``model`` and ``loss`` already on the device and prepared by ``accel``)."""
        optimizer = build_optimizer(config.optimizer, *rated_parts(config, model, loss),
                                    **accel.optimizer_options())
        total_steps = step_budget(config.training, len(source))
        scheduler = build_scheduler(config.schedule, optimizer, total_steps)
        step = make_train_step(model, loss, optimizer, normaliser, accel, total_steps,
                               extra_bn_pass=config.training.extra_bn_pass)
        return cls(step, scheduler, source, config.training, accel.sync_every, augmentation)

    @property
    def total_steps(self) -> int:
        """The run's step budget (:func:`step_budget`)."""
        return step_budget(self.spec, len(self.source))

    @property
    def epochs(self) -> int:
        """Epochs the budget spans (the last one may stop early under ``iterations``)."""
        return -(-self.total_steps // len(self.source))

    @property
    def model(self) -> HashingModel:
        return self.step.model

    @property
    def loss(self) -> CompositeLoss:
        return self.step.loss

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.step.optimizer

    def fit(self, callbacks: TrainCallbacks = TrainCallbacks(), start: LoopState | None = None) -> TrainResult:
        """Train from ``start`` (a resumed run: model, optimizer, scheduler and RNG states
        already restored by the caller) to the last epoch; return the selected weights."""
        start = start or LoopState()
        best_score, best_epoch, best_state = start.best_score, start.best_epoch, start.best_state
        history: list[dict[str, float]] = list(start.history)
        step, wait, epoch = start.step, start.wait, start.epoch
        spec = self.spec
        while epoch < self.epochs and not (spec.early_stop_patience and wait > spec.early_stop_patience):
            epoch += 1
            step, metrics = self._epoch(epoch, step, callbacks.on_step)
            score = self._score(epoch, metrics, callbacks.validate)
            if score is not None and score > best_score:
                best_score, best_epoch, best_state, wait = score, epoch, self._snapshot(), 0
            elif score is not None:
                wait += 1  # Keras 1 EarlyStopping: stop once wait exceeds the patience
            if spec.restore_best_every and epoch % spec.restore_best_every == 0 and best_state is not None:
                self._restore(best_state)
            callbacks.log_metrics(metrics, epoch)
            history.append({"epoch": epoch, **metrics})
            callbacks.on_epoch_end(LoopState(epoch, step, best_score, best_epoch, best_state, history, wait))
        if best_state is None:  # selection by validation without a validator: keep the last
            best_state, best_epoch = self._snapshot(), epoch
        return TrainResult(copy.deepcopy(best_state), best_epoch, step, history, self.step.status)

    def _epoch(self, epoch: int, step: int, on_step: Callable[[int, float], None]) -> tuple[int, dict[str, float]]:
        """One epoch from step ``step``; returns the step count after it and the mean losses."""
        self.model.train()
        self.loss.train()
        meter = LossMeter(self.step.names, self.sync_every)
        for batch in self.source:
            if step >= self.total_steps:  # a step budget that ends inside this epoch
                break
            batch = batch._replace(images=augment(batch.images, self.augmentation, self.source.generator))
            value = meter.add(self.step(batch, epoch, step))  # None between host read-backs
            step += 1
            self.scheduler.step()
            if value is not None:
                if not math.isfinite(value):
                    late = f" (the loss is read every {meter.sync_every} steps)" if meter.sync_every > 1 else ""
                    raise RunFailed(f"non-finite loss at step {step}{late}")
                on_step(step, value)
        metrics = meter.means()
        if not all(math.isfinite(v) for v in metrics.values()):
            raise RunFailed(f"non-finite loss in epoch {epoch} (by step {step})")
        return step, metrics

    def _score(self, epoch: int, metrics: dict[str, float], validate: Callable[[], float] | None) -> float | None:
        """The epoch's selection score (higher is better), or ``None`` when it is not scored;
        a validation score is added to ``metrics`` as ``val_map``."""
        if self.spec.selection == "val_map" and validate is not None:
            if epoch % self.spec.validate_every == 0 or epoch == self.epochs:
                metrics["val_map"] = validate()
                return metrics["val_map"]
            return None
        if self.spec.selection == "train_loss":
            if self.spec.selection_l2:
                metrics["loss/l2"] = self._decay_penalty()
                return -(metrics["loss/total"] + metrics["loss/l2"])
            return -metrics["loss/total"]
        return float(epoch) if epoch == self.epochs else None

    def _decay_penalty(self) -> float:
        """``weight_decay / 2 * sum ||W||^2`` over each decayed parameter group: the loss term
        whose gradient the optimizer's coupled weight decay adds (zero for AdamW's)."""
        if isinstance(self.optimizer, torch.optim.AdamW):
            return 0.0
        with torch.no_grad():
            total = sum(group["weight_decay"] / 2 * sum(float(p.float().square().sum()) for p in group["params"])
                        for group in self.optimizer.param_groups if group["weight_decay"])
        return float(total)

    def _snapshot(self) -> State:
        state = {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "loss": {k: v.detach().cpu().clone() for k, v in self.loss.state_dict().items()},
        }
        if self.spec.restore_best_every:  # the optimizer's state travels with the weights
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            state["optimizer"] = {str(i): {k: v.detach().cpu().clone() for k, v in self.optimizer.state[p].items()}
                                  for i, p in enumerate(params) if p in self.optimizer.state}
        return state

    def _restore(self, state: State) -> None:
        """Continue from ``state`` (a snapshot with the optimizer's state), in place: a
        captured step keeps pointing at the same tensors."""
        with torch.no_grad():
            for module, key in ((self.model, "model"), (self.loss, "loss")):
                for name, value in module.state_dict().items():
                    value.copy_(state[key][name])
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            for i, p in enumerate(params):
                for k, v in state["optimizer"].get(str(i), {}).items():
                    self.optimizer.state[p][k].copy_(v)
