"""``bench runs``: list the runs in the store (name, id, status, method, bits, seed, map, when),
newest first, with filters; a run whose codes collapsed (all identical, or bits that never
change) is flagged."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from bench.cli.app import app, console
from bench.tracking.status import STORED


@app.command("runs")
def runs_command(
    experiment: Annotated[str | None, typer.Option(help="Only runs of this MLflow experiment.")] = None,
    method: Annotated[str | None, typer.Option(help="Only runs of this method.")] = None,
    bits: Annotated[int | None, typer.Option(help="Only runs of this code length.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Only runs of this seed.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only runs on this dataset.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status: FINISHED, RUNNING, SCHEDULED, FAILED or KILLED.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (newest first).", min=1)] = 50,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")] = None,
) -> None:
    """List the benchmark runs in the store, newest first (filters combine)."""
    from bench.api.errors import BenchError
    from bench.tracking import tags as T
    from bench.tracking.client import check_tracking_uri, resolve_tracking_uri, sqlite_path
    from bench.tracking.reading import StoreReader

    if status is not None and status.upper() not in STORED:
        raise BenchError(f"--status {status}: use one of {', '.join(STORED)}")
    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise BenchError(f"no MLflow store at {db}; run `bench run` first or pass --tracking-uri")
    check_tracking_uri(uri, write=False)  # a read-only command: the store may sit in a read-only folder
    wanted = {T.METHOD: method, T.BITS: bits, T.SEED: seed, T.DATASET: dataset}
    found = StoreReader(uri).search(experiment, {k: v for k, v in wanted.items() if v is not None},
                                    status.upper() if status else None)
    found = [r for r in found if T.METHOD in r.data.tags]  # child runs (parents have no method)
    table = Table(title=f"{len(found)} run(s) in {uri}" + (f", newest {limit}" if len(found) > limit else ""),
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", overflow="fold", ratio=1)
    for column in ("id", "status", "method", "bits", "seed", "map", "when"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("bits", "seed", "map") else "left")
    for run in found[:limit]:
        tags, metrics = run.data.tags, run.data.metrics
        name = escape(tags.get(T.RUN_NAME, "-"))
        if tags.get(T.CODES_COLLAPSED):
            name += f"\n[bold red]collapsed: {escape(tags[T.CODES_COLLAPSED])}[/]"
        table.add_row(name, run.info.run_id[:12], run.info.status, escape(tags.get(T.METHOD, "-")),
                      tags.get(T.BITS, "-"), tags.get(T.SEED, "-"),
                      f"{metrics['map']:.3f}" if "map" in metrics else "-", _when(run.info.start_time))
    console.print(table)
    if found:
        console.print("re-evaluate one with `bench eval NAME` (a unique name) or `bench eval ID`",
                      markup=False, highlight=False)


def _when(millis: int | None) -> str:
    """A run's start time, local, to the minute.

    >>> _when(None)
    '-'
    """
    import time

    return "-" if not millis else time.strftime("%Y-%m-%d %H:%M", time.localtime(millis / 1000))
