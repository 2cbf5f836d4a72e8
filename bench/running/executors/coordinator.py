"""Carry out planned runs through an executor with nothing lost or counted twice. The
coordinator is the only place that opens, reopens and ends MLflow runs.

One parent MLflow run holds the runs of a sweep; rerunning the same sweep (same set of
configurations and code) reuses it. A run whose configuration hash already FINISHED on the
same data split with the same code fingerprint anywhere in the store is skipped (``force``
reruns it in a new run); an unfinished one (interrupted, failed, never started) is reopened
and continues from its last epoch checkpoint. Every other run is opened here and marked
SCHEDULED before the executor gets it, RUNNING when the executor starts it, and ended here
when its result arrives (every executor reports results in this process), so a run whose
worker dies is still accounted for. Ctrl-C marks the unfinished runs KILLED; rerunning
continues them.

One owner per run (:mod:`bench.tracking.ownership`): runs are claimed under the store's
lock before they are handed to the executor, and this process keeps a heartbeat on the
runs it holds. An unfinished run that another live process holds is never trained here:
it is waited for (then skipped once finished, or taken over when its owner dies) or, with
``if_running="skip"``, skipped with the owner named.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost
from bench.config.hashing import stable_hash
from bench.running.executors.base import Executor, NullReporter, Reporter, Task, in_process_plugins
from bench.running.identity import run_params
from bench.running.planning import PreparedRun
from bench.running.spec import RunResult
from bench.tracking import ownership, store
from bench.tracking import tags as T
from bench.tracking.client import Tracker, flatten
from bench.tracking.status import RunStatus

CLAIM_BATCH = 8  # runs claimed (opened, SCHEDULED) at a time: a large sweep starts training at once
IfRunning = Literal["wait", "skip"]  # what to do with a run another live process is training


def check_if_running(value: str) -> IfRunning:
    """``--if-running`` is ``wait`` or ``skip`` (checked before anything is written)."""
    for choice in get_args(IfRunning):  # the Literal's choices, declared once
        if value == choice:
            return choice
    raise BenchError(f"--if-running '{value}': use wait (for the process training the run) or skip")


@dataclass
class Outcome:
    """The parent run and one result per run (``SKIPPED`` for runs finished earlier)."""

    parent_id: str
    results: list[RunResult]

    @property
    def skipped(self) -> list[RunResult]:
        return [r for r in self.results if r.status == RunStatus.SKIPPED]

    @property
    def ran(self) -> list[RunResult]:
        return [r for r in self.results if r.status != RunStatus.SKIPPED]

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status not in (RunStatus.SKIPPED, RunStatus.FINISHED)]

    def summary(self) -> str:
        """``ran 8 (7 finished, 1 failed), skipped 0``."""
        ran, failed = len(self.ran), len(self.failed)
        return f"ran {ran} ({ran - failed} finished, {failed} failed), skipped {len(self.skipped)}"


class _Lifecycle:
    """Marks each task's run RUNNING when it starts and ends it when its result arrives,
    then forwards to the reporter; remembers which tasks have a result."""

    def __init__(self, tracker: Tracker, inner: Reporter, heartbeat: ownership.Heartbeat) -> None:
        self.tracker = tracker
        self.inner = inner
        self.heartbeat = heartbeat
        self.done: set[int] = set()

    def scheduled(self, tasks: list[Task]) -> None:
        self.inner.scheduled(tasks)

    def note(self, text: str) -> None:
        self.inner.note(text)

    def started(self, task: Task) -> None:
        self.tracker.client.update_run(task.run_id, status=RunStatus.RUNNING)
        self.inner.started(task)

    def progress(self, task: Task, step: int, loss: float) -> None:
        self.inner.progress(task, step, loss)

    def finished(self, task: Task, result: RunResult) -> None:
        end_run(self.tracker, result)
        self.heartbeat.release(task.run_id)
        self.done.add(task.index)
        self.inner.finished(task, result)


def open_run(run: PreparedRun, tracker: Tracker, experiment_id: str, parent_id: str | None) -> str:
    """Create the child run of ``run`` with its tags, parameters and this process as its
    owner; returns its id."""
    spec = run.spec
    run_id = tracker.start_run(experiment_id, spec.name, {**run.tags, **ownership.claim_tags()}, parent_id)
    tracker.log_params(run_id, flatten(run_params(spec)))
    return run_id


def end_run(tracker: Tracker, result: RunResult) -> None:
    """End the result's run with its status; one that did not finish keeps its reason."""
    if result.run_id is None:  # never opened: nothing to end
        return
    if result.status != RunStatus.FINISHED:
        tracker.set_tags(result.run_id, {T.FAILURE_REASON: result.reason[:4000]})
    tracker.end(result.run_id, result.status)


def run_key(run: PreparedRun) -> str:
    """What makes two runs the same: configuration, data split and code."""
    return f"{run.spec.config_hash()}:{run.checksum}:{run.code_fingerprint}"


def unique_runs(runs: list[PreparedRun]) -> list[PreparedRun]:
    """Drop repeated runs (same configuration on the same split with the same code), keeping the first."""
    seen: set[str] = set()
    kept = []
    for run in runs:
        key = run_key(run)
        if key not in seen:
            seen.add(key)
            kept.append(run)
    return kept


def execute_runs(
    host: PluginHost,
    runs: list[PreparedRun],
    executor: Executor,
    tracker: Tracker,
    experiment_id: str,
    output_dir: Path,
    *,
    force: bool = False,
    parent_name: str = "sweep",
    parent_tags: dict[str, str] | None = None,
    reporter: Reporter | None = None,
    if_running: IfRunning = "wait",
    poll_seconds: float = 2.0,
) -> Outcome:
    """Skip, reopen or open each run under one parent, execute the rest, close the parent.

    A run another live process is training is waited for (``if_running="wait"``: it is
    skipped once that process finishes it, taken over if that process dies) or skipped
    (``"skip"``)."""
    runs = unique_runs(runs)
    reporter = reporter or NullReporter()
    sweep_hash = stable_hash(sorted(run_key(r) for r in runs))[:16]
    lock = ownership.claim_lock(tracker.uri, output_dir)
    with lock:
        parent_id = None if force else store.find_parent(tracker, experiment_id, sweep_hash)
        if parent_id is None:
            tags = {**(parent_tags or {}), T.KIND: "parent", T.SWEEP_HASH: sweep_hash}
            parent_id = tracker.start_run(experiment_id, parent_name, tags)
        else:
            tracker.client.update_run(parent_id, status=RunStatus.RUNNING)
    claimer = _Claimer(tracker, experiment_id, parent_id, output_dir, force, in_process_plugins(host))
    lifecycle = _Lifecycle(tracker, reporter, claimer.heartbeat)
    results: dict[int, RunResult] = {}
    pending = dict(enumerate(runs))
    waiting, announced = "", False
    try:
        while pending:
            with lock:
                tasks, busy = claimer.claim(pending, results, CLAIM_BATCH)
            pending = {i: run for i, run in pending.items()
                       if i not in results and i not in {t.index for t in tasks}}
            if busy and if_running == "skip":
                for i in busy:
                    results[i] = RunResult(pending.pop(i).spec, RunStatus.SKIPPED,
                                           reason=f"another process ({claimer.owners[i]}) is running it")
            if tasks:
                if not announced:  # the reporter learns the first batch up front (later ones as they start)
                    lifecycle.scheduled(tasks)
                    announced = True
                for task, result in zip(tasks, executor.run(tasks, host, lifecycle), strict=True):
                    results[task.index] = result
                    if task.index not in lifecycle.done:  # an executor that did not report this result
                        lifecycle.finished(task, result)
            elif pending:
                text = (f"waiting for {len(pending)} run(s) that another process is training: "
                        + ", ".join(f"{run.spec.name} ({claimer.owners[i]})" for i, run in pending.items()))
                if text != waiting:
                    reporter.note(text)
                    waiting = text
                time.sleep(poll_seconds)
    except BaseException as exc:
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"sweep stopped: {exc}"
        for task in claimer.tasks:
            if task.index not in lifecycle.done:
                try:
                    end_run(tracker, task.failed(f"{why}; rerun the sweep to continue this run", RunStatus.KILLED))
                except Exception:  # noqa: BLE001, S110 - the store is unreachable; rerunning continues the run
                    pass
        tracker.end(parent_id, RunStatus.KILLED)
        raise
    finally:
        claimer.heartbeat.stop()
    outcome = Outcome(parent_id, [results[i] for i in range(len(runs))])
    tracker.set_tags(parent_id, {T.RUNS_RAN: str(len(outcome.ran)),
                                 T.RUNS_SKIPPED: str(len(outcome.skipped)),
                                 T.RUNS_FAILED: str(len(outcome.failed))})
    tracker.end(parent_id, RunStatus.FAILED if outcome.failed else RunStatus.FINISHED)
    return outcome


class _Claimer:
    """Decides, under the claim lock, what becomes of each pending run: skipped (finished
    earlier), busy (another live process holds it; :attr:`owners` says who) or claimed for
    this process (reopened or opened, tagged with this owner, SCHEDULED, heartbeat held)."""

    def __init__(self, tracker: Tracker, experiment_id: str, parent_id: str, output_dir: Path, force: bool,
                 plugins: tuple[tuple[str, str | None], ...]) -> None:
        self.tracker, self.experiment_id, self.parent_id = tracker, experiment_id, parent_id
        self.output_dir, self.force, self.plugins = output_dir, force, plugins
        self.heartbeat = ownership.Heartbeat(tracker)
        self.owners: dict[int, str] = {}
        self.tasks: list[Task] = []

    def claim(self, pending: dict[int, PreparedRun], results: dict[int, RunResult],
              limit: int) -> tuple[list[Task], list[int]]:
        """Claim up to ``limit`` pending runs no live process holds; record the skipped ones in
        ``results``; returns the claimed tasks and the runs seen held elsewhere. Each claimed
        run is known to the caller's cleanup (:attr:`tasks`) from the moment it is opened."""
        tracker = self.tracker
        experiments = store.experiment_ids(tracker)
        tasks: list[Task] = []
        busy: list[int] = []
        for i, run in pending.items():
            if len(tasks) >= limit:
                break
            spec = run.spec
            found = [] if self.force else store.runs_of_config(tracker, experiments, spec.config_hash(), run.checksum,
                                                               run.code_fingerprint)
            finished = [r for r in found if r.info.status == RunStatus.FINISHED]
            if finished:
                results[i] = RunResult(spec, RunStatus.SKIPPED, dict(finished[0].data.metrics), finished[0].info.run_id)
                continue
            holders = [owner for owner in map(ownership.held_elsewhere, found) if owner]
            if holders:
                self.owners[i] = holders[0]
                busy.append(i)
                continue
            if found:
                run_id = store.reopen(tracker, found[0], self.parent_id)
                tracker.set_tags(run_id, ownership.claim_tags())
            else:
                run_id = open_run(run, tracker, self.experiment_id, self.parent_id)
            task = Task(i, spec, run_id, tracker.uri, self.experiment_id, self.parent_id, str(self.output_dir),
                        self.plugins, prepared=run)
            self.tasks.append(task)  # an interruption from here on ends it KILLED
            tasks.append(task)
            tracker.client.update_run(run_id, status=RunStatus.SCHEDULED)
            self.heartbeat.hold(run_id)
        return tasks, busy
