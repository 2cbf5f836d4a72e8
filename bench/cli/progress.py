"""Progress of ``bench run`` / ``bench sweep``: epoch x/N, step, loss, elapsed and ETA per run
and for the whole invocation.

On a terminal it is a live rich progress display (one bar per run and one for all runs); when
stdout is not a terminal (a log file, a pipe) it prints plain lines instead: one when a run
starts, one per finished epoch (at most one per ``interval`` seconds, but always the first and
the last epoch) and one when a run ends, each with the invocation's overall ETA.

A run's size is its step budget (epochs x batches per epoch) plus one unit for encoding and
evaluation; a fitted method (no training) is that one unit. The overall ETA is the remaining
size at the rate measured so far in this invocation (steps of a resumed run done before it
do not count).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from bench.running.prepared import PreparedRun


def clock(seconds: float | None) -> str:
    """``h:mm:ss``; ``-:--:--`` when unknown.

    >>> clock(3725.4), clock(None)
    ('1:02:05', '-:--:--')
    """
    if seconds is None or not math.isfinite(seconds):
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass(frozen=True)
class TrainingShape:
    """A deep run's step budget (:func:`bench.training.loop.step_budget`) and its batches per
    epoch; under ``training.iterations`` the last epoch may stop early."""

    steps: int
    per_epoch: int

    @property
    def epochs(self) -> int:
        """Epochs the budget spans, as the training loop counts them."""
        return -(-self.steps // self.per_epoch)


def training_shape(prepared: PreparedRun | None) -> TrainingShape | None:
    """The step budget and batches per epoch of a prepared deep run; ``None`` for a fitted
    method or when the coordinator does not hold the prepared run."""
    from bench.running.prepared import DeepRun

    if not isinstance(prepared, DeepRun):
        return None
    training = prepared.config.training
    from bench.data.faces import TRAIN
    from bench.training.batching import batches_per_epoch
    from bench.training.loop import step_budget

    labels = prepared.data.part(TRAIN)[1]
    per_epoch = batches_per_epoch(labels, training.batch_size, training.sampler, training.ids_per_batch)
    return TrainingShape(steps=step_budget(training, per_epoch), per_epoch=per_epoch)


@dataclass
class RunState:
    """What the reporter knows of one run."""

    name: str
    shape: TrainingShape | None
    started: float | None = None
    first_step: int | None = None
    step: int = 0
    loss: float | None = None
    done: bool = False
    seen_epoch: int = 0  # the last finished epoch a progress report fell in
    printed_at: float = 0.0

    @property
    def total_steps(self) -> int:
        return self.shape.steps if self.shape else 0

    @property
    def size(self) -> int:
        """Steps plus one unit for encoding and evaluation."""
        return self.total_steps + 1

    @property
    def completed(self) -> int:
        return self.size if self.done else min(self.step, self.total_steps)

    def epoch(self) -> int:
        """Epochs finished so far (the budget's last one, maybe partial, once its last step is done)."""
        if not self.shape:
            return 0
        return self.shape.epochs if self.step >= self.shape.steps else self.step // self.shape.per_epoch

    def eta(self, now: float) -> float | None:
        """Seconds left for this run at its measured step rate."""
        if self.first_step is None or self.started is None or self.step <= self.first_step:
            return None
        rate = (self.step - self.first_step) / (now - self.started)
        return (self.total_steps - self.step) / rate if rate > 0 else None

    def status(self) -> str:
        if not self.shape:
            return "fitting"
        epochs = self.shape.epochs
        loss = "" if self.loss is None else f" loss {self.loss:.4f}"
        return f"epoch {min(self.epoch() + 1, epochs)}/{epochs} step {self.step}/{self.total_steps}{loss}"


class ProgressReporter:
    """A :class:`bench.running.executors.base.Reporter` for the terminal or a log file."""

    def __init__(self, console: Console, live: bool | None = None, interval: float = 10.0) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.interval = interval
        self.runs: dict[int, RunState] = {}
        self.begin = time.monotonic()
        self.bar: Progress | None = None
        self.ids: dict[int | str, Any] = {}

    def __enter__(self) -> ProgressReporter:
        if self.live:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20),
                                TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                TextColumn("eta"), TimeRemainingColumn(), console=self.console)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    # -- the Reporter protocol -------------------------------------------------------------
    def scheduled(self, tasks: list[Any]) -> None:
        """The runs this invocation executes (called once, before the first starts)."""
        for task in tasks:
            self.runs[task.index] = RunState(task.spec.name, training_shape(task.prepared))
        self.begin = time.monotonic()
        if self.bar is not None and tasks:
            self.ids["all"] = self.bar.add_task(self._all_label(), total=self._total(), status="")

    def started(self, task: Any) -> None:
        state = self._state(task)
        state.started = time.monotonic()
        if self.bar is not None:
            self.ids[task.index] = self.bar.add_task(escape(state.name), total=state.size, status=state.status())
        else:
            how = f"{state.shape.epochs} epochs x {state.shape.per_epoch} steps" if state.shape else "fitted, no training"
            self._line(f"{self._position(task)} {state.name} started ({how})")

    def progress(self, task: Any, step: int, loss: float) -> None:
        state = self._state(task)
        if state.first_step is None:
            state.first_step, state.started = step, time.monotonic()
        state.step, state.loss = step, loss
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update(self.ids[task.index], completed=state.completed, status=state.status())
            self._update_all()
            return
        epoch = state.epoch()
        if epoch <= state.seen_epoch:  # an epoch's line is printed at its first report only
            return
        last = state.shape is not None and epoch == state.shape.epochs
        first, state.seen_epoch = state.seen_epoch == 0, epoch
        if first or last or now - state.printed_at >= self.interval:
            state.printed_at = now
            self._line(f"{state.name} epoch {epoch}/{state.shape.epochs} step {step}/{state.total_steps} "
                       f"loss {loss:.4f} elapsed {clock(now - state.started)} eta {clock(state.eta(now))} | "
                       f"{self._overall(now)}")

    def note(self, text: str) -> None:
        """A line about the whole invocation (e.g. runs waited for)."""
        self._line(text)

    def finished(self, task: Any, result: Any) -> None:
        state = self._state(task)
        state.done = True
        detail = f"map={result.metrics['map']:.4f}" if "map" in result.metrics else result.reason[:60]
        if self.bar is not None:
            if task.index not in self.ids:
                self.ids[task.index] = self.bar.add_task(escape(state.name), total=state.size, status="")
            self.bar.update(self.ids[task.index], total=state.size, completed=state.size,
                            status=escape(f"{result.status} {detail}"))
            self._update_all()
            return
        self._line(f"{state.name} {result.status} {detail} in {result.seconds:.1f} s | "
                   f"{self._overall(time.monotonic())}")

    # -- helpers ---------------------------------------------------------------------------
    def _state(self, task: Any) -> RunState:
        if task.index not in self.runs:  # an executor that reports a task it was not scheduled with
            self.runs[task.index] = RunState(task.spec.name, training_shape(task.prepared))
        return self.runs[task.index]

    def _total(self) -> int:
        return sum(r.size for r in self.runs.values())

    def _done(self) -> int:
        return sum(r.completed for r in self.runs.values())

    def _position(self, task: Any) -> str:
        return f"[{sum(1 for r in self.runs.values() if r.started is not None)}/{len(self.runs)}]"

    def _all_label(self) -> str:
        return f"all runs ({sum(r.done for r in self.runs.values())}/{len(self.runs)} done)"

    def _update_all(self) -> None:
        if "all" in self.ids and self.bar is not None:
            self.bar.update(self.ids["all"], description=self._all_label(), total=self._total(), completed=self._done())

    def _overall(self, now: float) -> str:
        done, total, elapsed = self._done(), self._total(), now - self.begin
        eta = (total - done) * elapsed / done if done else None
        runs_done = sum(r.done for r in self.runs.values())
        return f"all: {runs_done}/{len(self.runs)} runs, {100 * done / max(total, 1):.0f}%, elapsed {clock(elapsed)} eta {clock(eta)}"

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)
