"""Command-line options that several commands share, declared without heavy imports.

Every ``bench`` command module is imported to build ``bench --help``, so a command module
imports only typer, rich and modules like this one at its top; torch, MLflow, pandas, numpy
and ``bench.running`` / ``training`` / ``reports`` / ``tracking.reading`` are imported inside
the command function (tests/test_cli_lazy.py checks it).
"""

from __future__ import annotations

from typing import Annotated

import typer

ExecutorOption = Annotated[str, typer.Option(help="local (in process), processes (one worker per GPU or --max-parallel) or ray.")]
MaxParallelOption = Annotated[int | None, typer.Option(help="Runs at once (processes: worker count, default one per GPU or CPU core; ray: tasks in flight).", min=1)]
RayAddressOption = Annotated[str | None, typer.Option(help="Ray cluster to use (ray.init address, e.g. auto or ray://head:10001); default: a local Ray instance.")]
ForceOption = Annotated[bool, typer.Option(help="Rerun runs whose configuration already FINISHED in the store.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Results table with every metric and its tie bounds (wider than 80 columns).")]
IfRunningOption = Annotated[str, typer.Option(help="A run another live process is training: wait for it, or skip it.")]
