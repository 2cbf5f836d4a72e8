"""What ``bench run``, ``bench sweep`` and ``bench tune`` share: the plugin host (failures
warned), the store and experiment (checked before anything is written), building the executor, executing under one
parent run with progress (:mod:`bench.cli.progress`), the results table
(:mod:`bench.cli.results_table`) and the closing summary (ran / skipped / failed; exit code 1
on failures). Heavy: the commands import it inside their functions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from bench.api import pluginhost
from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost
from bench.api.registry import check_options
from bench.cli.app import console, err_console
from bench.cli.progress import ProgressReporter
from bench.cli.results_table import results_table, without_relevant
from bench.config.paths import check_writable_folder
from bench.running.executors.coordinator import IfRunning, Outcome, execute_runs
from bench.running.planning import SELECTION_FALLBACK, PreparedRun
from bench.running.spec import RunResult
from bench.tracking.client import (
    Tracker,
    check_experiment_name,
    check_tracking_uri,
    resolve_tracking_uri,
    sqlite_path,
)

FLAGS = {"max_parallel": "--max-parallel", "address": "--ray-address"}


@dataclass(frozen=True, kw_only=True)
class ExecutionChoice:
    """Where and how a command's runs execute and are logged: the options ``bench run`` and
    ``bench sweep`` share (``--executor``, ``--max-parallel``, ``--ray-address``,
    ``--tracking-uri``, ``--output``, ``--force``, ``--wide``, ``--if-running``, checked)."""

    executor: str = "local"
    max_parallel: int | None = None
    ray_address: str | None = None
    tracking_uri: str | None = None
    output: Path = Path("bench-output")
    force: bool = False
    wide: bool = False
    if_running: IfRunning = "wait"

    def runner(self, host: PluginHost) -> Any:
        """The executor these options name (:func:`build_executor`)."""
        return build_executor(host, self.executor, self.max_parallel, self.ray_address)

    def resolved(self) -> ExecutionChoice:
        """The same choice with ``output`` as an absolute path (for workers in other folders)."""
        return replace(self, output=self.output.resolve())

    def execute(self, host: PluginHost, runs: list[PreparedRun], runner: Any, tracker: Tracker,
                experiment_id: str, *, parent_name: str, parent_tags: dict[str, str]) -> Outcome:
        """:func:`execute_and_report` under these options."""
        return execute_and_report(host, runs, runner, tracker, experiment_id, self.output, force=self.force,
                                  parent_name=parent_name, parent_tags=parent_tags, wide=self.wide,
                                  if_running=self.if_running)


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


def command_host() -> PluginHost:
    """The plugin host every command starts from, each plugin that failed to load warned about."""
    host = pluginhost.default_host()  # looked up when called (tests replace it)
    for failure in host.failures:
        err_console.print(f"warning: plugin '{failure.plugin}' failed to load: {failure.error}", markup=False)
    return host


def open_experiment(execution: ExecutionChoice, experiment: str) -> tuple[Tracker, str]:
    """The store (``--tracking-uri``) and the experiment runs are logged to, checked before
    anything is written, with the output folder; returns the tracker and the experiment's id."""
    uri = resolve_tracking_uri(execution.tracking_uri)
    check_tracking_uri(uri)
    warn_cluster_store(execution.executor, execution.ray_address, uri)
    check_experiment_name(experiment)
    check_writable_folder(execution.output, "--output", "pass a writable --output folder")
    tracker = Tracker(uri)
    return tracker, tracker.experiment(experiment)


def warn_cluster_store(executor: str, ray_address: str | None, uri: str) -> None:
    if executor == "ray" and ray_address and sqlite_path(uri) is not None:
        err_console.print(
            f"warning: a Ray cluster logging to {uri}: every node must see this file; "
            "prefer an MLflow server (bench server) as --tracking-uri", markup=False)


def warn_large_k(runs: list[PreparedRun]) -> None:
    """Warn once per K of ``protocol.evaluation.precision_at`` that exceeds a run's gallery
    (precision at K then counts the whole gallery: it is precision at G)."""
    from bench.data.faces import TRAIN

    warned = set()
    for run in runs:
        gallery = int((run.data.split == TRAIN).sum())
        for k in run.spec.protocol.evaluation.precision_at or ():
            if k > gallery and (k, gallery) not in warned:
                warned.add((k, gallery))
                err_console.print(f"warning: precision_at_{k}: K exceeds the gallery of {gallery} images on "
                                  f"{run.spec.protocol.dataset}; it is the precision of the whole gallery "
                                  "(precision_at_r suits any gallery; set K with --set protocol.evaluation.precision_at=[...])",
                                  markup=False, highlight=False)


def warn_selection_fallback(runs: list[PreparedRun]) -> None:
    """Say once per method and dataset when a method that selects its checkpoint on validation
    mAP keeps the last epoch instead, because the data has no validation split (the runs'
    ``facehash.selection.applied`` tag records it too)."""
    from bench.tracking import tags as T

    warned = set()
    for run in runs:
        key = (run.spec.method, run.spec.protocol.dataset)
        if run.tags.get(T.SELECTION_APPLIED) == SELECTION_FALLBACK and key not in warned:
            warned.add(key)
            err_console.print(f"warning: {run.spec.method} selects its checkpoint on validation mAP, but dataset "
                              f"'{run.spec.protocol.dataset}' has no validation split: it keeps the last epoch "
                              "(give the data a validation split, e.g. --set dataset.val=1)",
                              markup=False, highlight=False)


def warn_without_relevant(results: list[RunResult]) -> None:
    """Say which runs scored queries that have no relevant gallery item (they count 0 in
    ``map`` and lower it; the table marks those cells)."""
    for r in results:
        if n := without_relevant(r.metrics):
            err_console.print(f"warning: run {r.spec.name}: {n} quer(y/ies) have no gallery image of their identity; "
                              "each scores 0 and lowers map (give every query identity gallery images, or drop those "
                              "queries)", markup=False, highlight=False)


def execute_and_report(host: PluginHost, runs: list[PreparedRun], executor: Any, tracker: Tracker,
                       experiment_id: str, output: Path, *, force: bool, parent_name: str,
                       parent_tags: dict[str, str], wide: bool = False, if_running: IfRunning = "wait") -> Outcome:
    """Execute under one parent run, print the table and summary; exit 1 when a run failed."""
    warn_large_k(runs)
    warn_selection_fallback(runs)
    with ProgressReporter(console) as reporter:
        outcome = execute_runs(host, runs, executor, tracker, experiment_id, output, force=force,
                               parent_name=parent_name, parent_tags=parent_tags, reporter=reporter,
                               if_running=if_running)
    print_results(outcome.results, wide=wide)
    warn_without_relevant(outcome.results)
    where = (f"open {tracker.uri}" if tracker.uri.startswith("http") else
             f"open it with `bench ui` or `mlflow ui --backend-store-uri {tracker.uri}`")
    console.print(f"{outcome.summary()}; MLflow parent run {outcome.parent_id} in {tracker.uri}; {where}",
                  markup=False, highlight=False)
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


def print_results(results: list[RunResult], wide: bool = False) -> None:
    """The results table (:func:`bench.cli.results_table.results_table`): one row per run; the
    method column names the settings a run overrides (``pca-itq[iterations=5]``)."""
    table = results_table(results, wide=wide)
    # the wide table is wider than a terminal may be: printed whole (the terminal wraps), not cut
    needed = console.measure(table, options=console.options.update_width(1000)).maximum
    if wide and needed > console.width:
        Console(file=console.file, width=needed, force_terminal=console.is_terminal,
                color_system=console.color_system).print(table)
    else:
        console.print(table)
