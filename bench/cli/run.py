"""``bench run``: train, encode, evaluate and log one run per (method, bits, seed)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.cli.app import app, console, err_console
from bench.config import build_protocol, parse_bits, parse_list, parse_sets, split_sets
from bench.errors import BenchError
from bench.pluginhost import default_host
from bench.protocol import ProtocolConfig, fingerprint
from bench.runner import RunResult, execute_run, load_data, plan_runs
from bench.tracking import Tracker, check_tracking_uri, resolve_tracking_uri

DEFAULTS = ProtocolConfig()
SHOWN_METRICS = ("map", "map_best", "map_worst", "precision_at_50", "precision_r2", "recall_r2")


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for item in parse_list(text):
        if not item.lstrip("-").isdigit():
            raise BenchError(f"--seeds: '{item}' is not an integer; use e.g. --seeds 0,1,2")
        seeds.append(int(item))
    return seeds or [0]


@app.command("run")
def run_command(
    method: Annotated[str, typer.Option(help="Method name, or a comma list (see `bench plugins`).")],
    bits: Annotated[str, typer.Option(help="Code lengths, comma separated.")] = "12,24,36,48",
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = DEFAULTS.dataset,
    data_root: Annotated[str | None, typer.Option(help="Where the dataset's files are (folder or .npz).")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds, comma separated.")] = "0",
    epochs: Annotated[int, typer.Option(help="Epoch budget of the protocol (deep methods).", min=1)] = DEFAULTS.epochs,
    batch_size: Annotated[int | None, typer.Option(help="Batch size for every deep method (default: each method's own).", min=1)] = None,
    standard: Annotated[str, typer.Option(help="as-published (each method's own optimizer and batch) or harness-standard.")] = DEFAULTS.standard,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    backbone: Annotated[str | None, typer.Option(help="Replace the method's backbone.")] = None,
    head: Annotated[str | None, typer.Option(help="Replace the method's hashing head.")] = None,
    loss: Annotated[str | None, typer.Option(help="Loss parts: a,b replaces; +part[:weight] adds; -part removes.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value setting (repeatable), e.g. optimizer.lr=1e-4, dataset.identities=50.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store [default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db].")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment [default: facehash-<dataset>-<protocol fingerprint>].")] = None,
    output: Annotated[Path, typer.Option(help="Folder for run artifacts before they are logged.")] = Path("bench-output"),
) -> None:
    """Train (or fit), encode, evaluate and log one run per (method, bits, seed), then print a table."""
    host = default_host()
    for failure in host.failures:
        err_console.print(f"warning: plugin '{failure.plugin}' failed to load: {failure.error}", markup=False)
    dataset_sets, protocol_sets, method_sets = split_sets(parse_sets(set_ or []))
    protocol = build_protocol(
        {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "standard": standard},
        protocol_sets, dataset_sets,
    )
    specs = plan_runs(
        host, methods=parse_list(method), bits=parse_bits(bits), seeds=parse_seeds(seeds),
        protocol=protocol, backbone=backbone, head=head, loss=loss, sets=method_sets,
        data_root=data_root, device=device,
    )
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    data = load_data(host, protocol, data_root)
    fp = fingerprint(protocol, data.checksum())
    tracker = Tracker(uri)
    experiment_id = tracker.experiment(experiment or f"facehash-{protocol.dataset}-{fp}")
    parent_id = tracker.start_run(
        experiment_id, f"bench-run-{time.strftime('%Y%m%d-%H%M%S')}",
        {"facehash.kind": "parent", "facehash.protocol_fingerprint": fp,
         "facehash.split_checksum": data.checksum(), "facehash.dataset": protocol.dataset,
         "facehash.command": shlex.join(["bench", *sys.argv[1:]])},
    )
    console.print(
        f"[bold]{len(specs)} run(s)[/] on {protocol.dataset} ({len(data.labels)} images, "
        f"{data.num_classes} identities, split {data.checksum()}), protocol {fp}, store {uri}"
    )
    results = execute_all(host, specs, data, tracker, experiment_id, parent_id, output)
    failed = [r for r in results if r.status != "FINISHED"]
    tracker.end(parent_id, "FAILED" if failed else "FINISHED")
    print_results(results)
    console.print(f"MLflow parent run {parent_id} in {uri}; open it with `bench ui` or "
                  f"`mlflow ui --backend-store-uri {uri}`")
    if failed:
        for r in failed:
            err_console.print(f"run {r.spec.name} FAILED: {r.reason}", markup=False)
        raise typer.Exit(1)


def execute_all(host, specs, data, tracker, experiment_id, parent_id, output) -> list[RunResult]:
    """Run specs one after the other with a progress bar per run."""
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        for spec in specs:
            task = progress.add_task(spec.name, total=None, status="")

            def on_step(step: int, value: float, task=task) -> None:
                progress.update(task, status=f"step {step} loss {value:.4f}")

            result = execute_run(host, spec, data, tracker, experiment_id, parent_id, output, on_step)
            progress.update(task, total=1, completed=1,
                            status=f"{result.status} map={result.metrics.get('map', float('nan')):.4f}")
            results.append(result)
    return results


def print_results(results: list[RunResult]) -> None:
    table = Table(title="Hamming retrieval results (queries vs gallery = train split)")
    for column in ("method", "bits", "seed", *SHOWN_METRICS, "seconds", "status"):
        table.add_column(column, justify="right" if column not in ("method", "status") else "left")
    for r in results:
        values = [f"{r.metrics[m]:.4f}" if m in r.metrics else "-" for m in SHOWN_METRICS]
        table.add_row(r.spec.method, str(r.spec.bits), str(r.spec.seed), *values,
                      f"{r.seconds:.1f}", r.status)
    console.print(table)
