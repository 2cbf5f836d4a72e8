"""``bench sweep SWEEP.yaml``: run a grid of methods x bits x seeds x datasets x overrides
under one parent MLflow run, skipping runs that already finished (see :mod:`bench.running.sweep`)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from bench.cli.app import app, console
from bench.cli.options import (
    ExecutorOption,
    ForceOption,
    IfRunningOption,
    MaxParallelOption,
    RayAddressOption,
    TrackingUriOption,
    WideOption,
)


@app.command("sweep")
def sweep_command(
    sweep_file: Annotated[Path, typer.Argument(help="YAML file: methods, bits, seeds, datasets, overrides, data_root.")],
    executor: ExecutorOption = "local",
    max_parallel: MaxParallelOption = None,
    ray_address: RayAddressOption = None,
    tracking_uri: TrackingUriOption = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: the file's experiment key, else facehash-sweep-<file name>).")] = None,
    output: Annotated[Path, typer.Option(help="Folder for run artifacts and resume checkpoints (shared by all workers).")] = Path("bench-output"),
    force: ForceOption = False,
    wide: WideOption = False,
    if_running: IfRunningOption = "wait",
    max_runs: Annotated[int, typer.Option(help="Refuse a sweep whose grid spans more runs than this (counted from its lists before anything is built).", min=1)] = 10_000,
) -> None:
    """Run every configuration of a sweep file; finished runs are skipped, interrupted ones continue."""
    from bench.cli.execution import ExecutionChoice, command_host, open_experiment
    from bench.running.executors.coordinator import check_if_running
    from bench.running.sweep import expand, load_sweep
    from bench.tracking import tags as T

    execution = ExecutionChoice(executor=executor, max_parallel=max_parallel, ray_address=ray_address,
                                tracking_uri=tracking_uri, output=output, force=force, wide=wide,
                                if_running=check_if_running(if_running))
    host = command_host()
    sweep = load_sweep(sweep_file)
    runs = expand(host, sweep, max_runs)
    runner = execution.runner(host)
    tracker, experiment_id = open_experiment(
        execution, experiment or sweep.experiment or f"facehash-sweep-{sweep_file.stem}")
    console.print(f"[bold]{len(runs)} run(s)[/] from {sweep_file} with executor {executor}, store {tracker.uri}")
    execution.resolved().execute(
        host, runs, runner, tracker, experiment_id,
        parent_name=f"sweep-{sweep_file.stem}-{time.strftime('%Y%m%d-%H%M%S')}",
        parent_tags={T.SWEEP_FILE: str(sweep_file), T.COMMAND: shlex.join(["bench", *sys.argv[1:]])},
    )
