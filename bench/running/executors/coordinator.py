"""Carry out planned runs through an executor with nothing lost or counted twice.

One parent MLflow run holds the runs of a sweep; rerunning the same sweep (same set of
configurations) reuses it. A run whose configuration hash already FINISHED on the same
data split anywhere in the store is skipped (``force`` reruns it in a new run); an
unfinished one (interrupted, failed, never started) is reopened and continues from its
last epoch checkpoint. Every other run is opened here and marked SCHEDULED before the
executor gets it, so a run whose worker dies is still accounted for. Ctrl-C marks the
unfinished runs KILLED; rerunning continues them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.api.pluginhost import PluginHost
from bench.config.hashing import stable_hash
from bench.running.executors.base import Executor, NullReporter, Reporter, Task, in_process_plugins
from bench.running.executors.worker import data_for, fail_task
from bench.running.runner import RunResult, RunSpec, open_run
from bench.tracking import store
from bench.tracking.client import Tracker

SKIPPED = "SKIPPED"


@dataclass
class Outcome:
    """The parent run and one result per run (``SKIPPED`` for runs finished earlier)."""

    parent_id: str
    results: list[RunResult]

    @property
    def skipped(self) -> list[RunResult]:
        return [r for r in self.results if r.status == SKIPPED]

    @property
    def ran(self) -> list[RunResult]:
        return [r for r in self.results if r.status != SKIPPED]

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status not in (SKIPPED, store.FINISHED)]

    def summary(self) -> str:
        """``ran 8 (7 finished, 1 failed), skipped 0``."""
        ran, failed = len(self.ran), len(self.failed)
        return f"ran {ran} ({ran - failed} finished, {failed} failed), skipped {len(self.skipped)}"


class _Tracked:
    """Forwards to a reporter and remembers which tasks have a result."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.done: set[int] = set()

    def started(self, task: Task) -> None:
        self.inner.started(task)

    def progress(self, task: Task, step: int, loss: float) -> None:
        self.inner.progress(task, step, loss)

    def finished(self, task: Task, result: RunResult) -> None:
        self.done.add(task.index)
        self.inner.finished(task, result)


def unique_specs(specs: list[RunSpec], checksums: list[str]) -> tuple[list[RunSpec], list[str]]:
    """Drop repeated configurations (same config hash on the same split), keeping the first."""
    seen: set[str] = set()
    kept, sums = [], []
    for spec, checksum in zip(specs, checksums, strict=True):
        key = f"{spec.config_hash()}:{checksum}"
        if key not in seen:
            seen.add(key)
            kept.append(spec)
            sums.append(checksum)
    return kept, sums


def execute_specs(
    host: PluginHost,
    specs: list[RunSpec],
    executor: Executor,
    tracker: Tracker,
    experiment_id: str,
    output_dir: Path,
    *,
    force: bool = False,
    parent_name: str = "sweep",
    parent_tags: dict[str, str] | None = None,
    reporter: Reporter | None = None,
) -> Outcome:
    """Skip, reopen or open each run under one parent, execute the rest, close the parent."""
    specs, checksums = unique_specs(specs, [data_for(host, s).checksum() for s in specs])
    sweep_hash = stable_hash(sorted(f"{s.config_hash()}:{c}" for s, c in zip(specs, checksums, strict=True)))[:16]
    parent_id = None if force else store.find_parent(tracker, experiment_id, sweep_hash)
    if parent_id is None:
        tags = {**(parent_tags or {}), "facehash.kind": "parent", "facehash.sweep_hash": sweep_hash}
        parent_id = tracker.start_run(experiment_id, parent_name, tags)
    else:
        tracker.client.update_run(parent_id, status="RUNNING")
    experiments = store.experiment_ids(tracker)
    plugins = in_process_plugins(host)
    results: dict[int, RunResult] = {}
    tasks = []
    for i, (spec, checksum) in enumerate(zip(specs, checksums, strict=True)):
        runs = [] if force else store.runs_of_config(tracker, experiments, spec.config_hash(), checksum)
        finished = [r for r in runs if r.info.status == store.FINISHED]
        if finished:
            results[i] = RunResult(spec, SKIPPED, dict(finished[0].data.metrics), finished[0].info.run_id)
            continue
        if runs:
            run_id = store.reopen(tracker, runs[0], parent_id)
        else:
            run_id = open_run(host, spec, data_for(host, spec), tracker, experiment_id, parent_id)
        tracker.client.update_run(run_id, status="SCHEDULED")
        tasks.append(Task(i, spec, run_id, tracker.uri, experiment_id, parent_id, str(output_dir), plugins))
    tracked = _Tracked(reporter or NullReporter())
    try:
        for task, result in zip(tasks, executor.run(tasks, host, tracked), strict=True):
            results[task.index] = result
    except BaseException as exc:
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"sweep stopped: {exc}"
        for task in tasks:
            if task.index not in tracked.done:
                fail_task(task, f"{why}; rerun the sweep to continue this run", status="KILLED")
        tracker.end(parent_id, "KILLED")
        raise
    outcome = Outcome(parent_id, [results[i] for i in range(len(specs))])
    tracker.set_tags(parent_id, {"facehash.runs_ran": str(len(outcome.ran)),
                                 "facehash.runs_skipped": str(len(outcome.skipped)),
                                 "facehash.runs_failed": str(len(outcome.failed))})
    tracker.end(parent_id, "FAILED" if outcome.failed else "FINISHED")
    return outcome
