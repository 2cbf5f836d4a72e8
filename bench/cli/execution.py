"""What ``bench run`` and ``bench sweep`` share: the executor options, progress bars, the
results table and the closing summary (ran / skipped / failed; exit code 1 on failures)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost
from bench.api.registry import check_options
from bench.cli.app import console, err_console
from bench.running.executors.base import Task
from bench.running.executors.coordinator import Outcome, execute_runs
from bench.running.planning import PreparedRun
from bench.running.spec import RunResult
from bench.tracking.client import Tracker, sqlite_path

SHOWN_METRICS = ("map", "map_best", "map_worst", "precision_at_50", "precision_r2", "recall_r2")

ExecutorOption = Annotated[str, typer.Option(help="local (in process), processes (one worker per GPU or --max-parallel) or ray.")]
MaxParallelOption = Annotated[int | None, typer.Option(help="Runs at once (processes: worker count, default one per GPU or CPU core; ray: tasks in flight).", min=1)]
RayAddressOption = Annotated[str | None, typer.Option(help="Ray cluster to use (ray.init address, e.g. auto or ray://head:10001); default: a local Ray instance.")]
ForceOption = Annotated[bool, typer.Option(help="Rerun runs whose configuration already FINISHED in the store.")]
IfRunningOption = Annotated[str, typer.Option(help="A run another live process is training: wait for it, or skip it.")]

FLAGS = {"max_parallel": "--max-parallel", "address": "--ray-address"}


def build_executor(host: PluginHost, name: str, max_parallel: int | None, ray_address: str | None) -> Any:
    """The registered executor ``name`` with the options given on the command line."""
    entry, _ = host.executors.resolve(name)
    options = {k: v for k, v in (("max_parallel", max_parallel), ("address", ray_address)) if v is not None}
    for key, value in options.items():
        try:
            check_options("executor", name, entry.factory, (), {key: value})
        except BenchError:
            raise BenchError(f"{FLAGS[key]} does not apply to executor '{name}'; drop it or use another --executor") from None
    return entry.factory(**options)


def check_if_running(value: str) -> None:
    """``--if-running`` is ``wait`` or ``skip`` (checked before anything is written)."""
    if value not in ("wait", "skip"):
        raise BenchError(f"--if-running '{value}': use wait (for the process training the run) or skip")


def warn_cluster_store(executor: str, ray_address: str | None, uri: str) -> None:
    if executor == "ray" and ray_address and sqlite_path(uri) is not None:
        err_console.print(
            f"warning: a Ray cluster logging to {uri}: every node must see this file; "
            "prefer an MLflow server (bench server) as --tracking-uri", markup=False)


class ProgressReporter:
    """One progress line per run, updated as the executor reports."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.ids: dict[int, Any] = {}

    def started(self, task: Task) -> None:
        self.ids[task.index] = self.bar.add_task(escape(task.spec.name), total=None, status="running")

    def progress(self, task: Task, step: int, loss: float) -> None:
        self.bar.update(self.ids[task.index], status=f"step {step} loss {loss:.4f}")

    def note(self, text: str) -> None:
        """A line about the whole invocation (e.g. runs waited for)."""
        self.bar.console.print(text, markup=False, highlight=False)

    def finished(self, task: Task, result: RunResult) -> None:
        if task.index not in self.ids:
            self.started(task)
        detail = f"map={result.metrics['map']:.4f}" if "map" in result.metrics else result.reason[:60]
        self.bar.update(self.ids[task.index], total=1, completed=1, status=escape(f"{result.status} {detail}"))


def execute_and_report(host: PluginHost, runs: list[PreparedRun], executor: Any, tracker: Tracker,
                       experiment_id: str, output: Path, *, force: bool, parent_name: str,
                       parent_tags: dict[str, str], if_running: str = "wait") -> Outcome:
    """Execute under one parent run, print the table and summary; exit 1 when a run failed."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        outcome = execute_runs(host, runs, executor, tracker, experiment_id, output, force=force,
                               parent_name=parent_name, parent_tags=parent_tags,
                               reporter=ProgressReporter(bar), if_running=if_running)
    print_results(outcome.results)
    where = (f"open {tracker.uri}" if tracker.uri.startswith("http") else
             f"open it with `bench ui` or `mlflow ui --backend-store-uri {tracker.uri}`")
    console.print(f"{outcome.summary()}; MLflow parent run {outcome.parent_id} in {tracker.uri}; {where}")
    finished_before = [r for r in outcome.skipped if not r.reason]
    if finished_before:
        console.print(f"{len(finished_before)} run(s) skipped: they already FINISHED in the store "
                      "(--force reruns them)")
    for r in outcome.skipped:
        if r.reason:
            console.print(f"run {r.spec.name} skipped: {r.reason} (--if-running wait waits for it)",
                          markup=False, highlight=False)
    if outcome.failed:
        for r in outcome.failed:
            err_console.print(f"run {r.spec.name} {r.status}: {r.reason}", markup=False)
        raise typer.Exit(1)
    return outcome


def print_results(results: list[RunResult]) -> None:
    """The results table: one row per run; the method column names the settings a run
    overrides (``pca-itq[iterations=5]``), so runs that differ only by them stay apart."""
    table = Table(title="Hamming retrieval results (queries vs gallery = train split)")
    for column in ("method", "bits", "seed", *SHOWN_METRICS, "seconds", "status"):
        table.add_column(column, justify="right" if column not in ("method", "status") else "left")
    for r in results:
        values = [f"{r.metrics[m]:.4f}" if m in r.metrics else "-" for m in SHOWN_METRICS]
        seconds = f"{r.seconds:.1f}" if r.seconds else "-"
        table.add_row(escape(r.spec.label), str(r.spec.bits), str(r.spec.seed), *values, seconds, r.status)
    console.print(table)
