"""``bench sweep SWEEP.yaml``: run a grid of methods x bits x seeds x datasets x overrides
under one parent MLflow run, skipping runs that already finished (see :mod:`bench.running.sweep`)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from bench.cli.app import app, console, err_console
from bench.cli.options import (
    ExecutorOption,
    ForceOption,
    IfRunningOption,
    MaxParallelOption,
    RayAddressOption,
    WideOption,
)


@app.command("sweep")
def sweep_command(
    sweep_file: Annotated[Path, typer.Argument(help="YAML file: methods, bits, seeds, datasets, overrides, data_root.")],
    executor: ExecutorOption = "local",
    max_parallel: MaxParallelOption = None,
    ray_address: RayAddressOption = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: the file's experiment key, else facehash-sweep-<file name>).")] = None,
    output: Annotated[Path, typer.Option(help="Folder for run artifacts and resume checkpoints (shared by all workers).")] = Path("bench-output"),
    force: ForceOption = False,
    wide: WideOption = False,
    if_running: IfRunningOption = "wait",
    max_runs: Annotated[int, typer.Option(help="Refuse a sweep whose grid spans more runs than this (counted from its lists before anything is built).", min=1)] = 10_000,
) -> None:
    """Run every configuration of a sweep file; finished runs are skipped, interrupted ones continue."""
    from bench.api.pluginhost import default_host
    from bench.cli.execution import (
        build_executor,
        check_if_running,
        execute_and_report,
        warn_cluster_store,
    )
    from bench.config.paths import check_writable_folder
    from bench.running.sweep import expand, load_sweep
    from bench.tracking import tags as T
    from bench.tracking.client import (
        Tracker,
        check_experiment_name,
        check_tracking_uri,
        resolve_tracking_uri,
    )

    check_if_running(if_running)
    host = default_host()
    for failure in host.failures:
        err_console.print(f"warning: plugin '{failure.plugin}' failed to load: {failure.error}", markup=False)
    sweep = load_sweep(sweep_file)
    runs = expand(host, sweep, max_runs)
    runner = build_executor(host, executor, max_parallel, ray_address)
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    warn_cluster_store(executor, ray_address, uri)
    experiment = experiment or sweep.experiment or f"facehash-sweep-{sweep_file.stem}"
    check_experiment_name(experiment)
    check_writable_folder(output, "--output", "pass a writable --output folder")
    tracker = Tracker(uri)
    experiment_id = tracker.experiment(experiment)
    console.print(f"[bold]{len(runs)} run(s)[/] from {sweep_file} with executor {executor}, store {uri}")
    execute_and_report(
        host, runs, runner, tracker, experiment_id, output.resolve(), force=force,
        parent_name=f"sweep-{sweep_file.stem}-{time.strftime('%Y%m%d-%H%M%S')}",
        if_running=if_running, parent_tags={T.SWEEP_FILE: str(sweep_file), T.COMMAND: shlex.join(["bench", *sys.argv[1:]])},
        wide=wide,
    )
