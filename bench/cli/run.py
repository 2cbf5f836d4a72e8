"""``bench run``: train, encode, evaluate and log one run per (method, bits, seed)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bench.cli.app import app, console, err_console
from bench.cli.options import (
    DEFAULT_DATASET,
    DEFAULT_EPOCHS,
    DEFAULT_SPLIT,
    DEFAULT_STANDARD,
    BackboneModeOption,
    BackboneOption,
    BatchSizeOption,
    DataRootOption,
    DatasetOption,
    DeviceOption,
    ExecutorOption,
    ExperimentOption,
    ForceOption,
    IfRunningOption,
    MaxParallelOption,
    RayAddressOption,
    TrackingUriOption,
    WideOption,
)

if TYPE_CHECKING:  # heavy: imported inside the command (bench/cli/options.py)
    from bench.api.pluginhost import PluginHost
    from bench.cli.execution import ExecutionChoice
    from bench.running.prepared import PreparedRun


@app.command("run")
def run_command(
    method: Annotated[str, typer.Option(help="Method name, or a comma list (see `bench plugins`).")],
    bits: Annotated[str, typer.Option(help="Code lengths, comma separated.")] = "12,24,36,48",
    dataset: DatasetOption = DEFAULT_DATASET,
    data_root: DataRootOption = None,
    seeds: Annotated[str, typer.Option(help="Seeds, comma separated.")] = "0",
    split: Annotated[str, typer.Option(help="closed-set (every identity in training and retrieval) or open-set (disjoint training and retrieval identities).")] = DEFAULT_SPLIT,
    split_seeds: Annotated[str | None, typer.Option(help="Run every configuration on each of these splits, comma separated (default: split 0).")] = None,
    epochs: Annotated[int | None, typer.Option(help=f"Epoch budget of the protocol (deep methods; default {DEFAULT_EPOCHS}, under --standard released each method's own).", min=1)] = None,
    batch_size: BatchSizeOption = None,
    standard: Annotated[str, typer.Option(help="method-defaults (each method's optimizer, batch and loss under the protocol's budget), harness-standard (one optimizer, batch and checkpoint rule for all) or released (each method as its authors' code; docs/reproducing.md).")] = DEFAULT_STANDARD,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 on GPUs and on CPUs with native bf16: AVX512-BF16 or AMX; else fp32), bf16 or fp32; bf16 applies to the backbone only.")] = "auto",
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model (slower start, faster steps).")] = False,
    cuda_graph: Annotated[str, typer.Option(help="auto, on or off: replay each training step from a CUDA graph. auto = eager (no graph) on CUDA until the graph tests of benchmarks/gpu_check.sh have passed on a GPU (docs/speed.md); on opts in.")] = "auto",
    device_data_mb: Annotated[float | None, typer.Option(help="Keep the training set on a CUDA device up to this many MiB (default: a quarter of its memory).")] = None,
    backbone: BackboneOption = None,
    backbone_mode: BackboneModeOption = None,
    head: Annotated[str | None, typer.Option(help="Replace the method's hashing head.")] = None,
    loss: Annotated[str | None, typer.Option(help="Loss parts: a,b replaces; +part[:weight] adds; -part removes.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value setting (repeatable), e.g. optimizer.lr=1e-4, dataset.identities=50.")] = None,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
    output: Annotated[Path, typer.Option(help="Folder for run artifacts and resume checkpoints.")] = Path("bench-output"),
    executor: ExecutorOption = "local",
    max_parallel: MaxParallelOption = None,
    ray_address: RayAddressOption = None,
    force: ForceOption = False,
    wide: WideOption = False,
    if_running: IfRunningOption = "wait",
) -> None:
    """Train (or fit), encode, evaluate and log one run per (method, bits, seed), then print a table."""
    from bench.cli.execution import ExecutionChoice, command_host
    from bench.cli.parsing import (
        acceleration_spec,
        parse_bits,
        parse_list,
        parse_loss,
        parse_seeds,
        parse_sets,
    )
    from bench.config.protocol import STANDARD_ALIASES
    from bench.config.settings import build_protocol, split_sets
    from bench.running.executors.coordinator import check_if_running
    from bench.running.planning import plan_runs
    from bench.running.request import PartChoice, RunRequest

    execution = ExecutionChoice(executor=executor, max_parallel=max_parallel, ray_address=ray_address,
                                tracking_uri=tracking_uri, output=output, force=force, wide=wide,
                                if_running=check_if_running(if_running))
    host = command_host()
    if standard in STANDARD_ALIASES:
        err_console.print(f"warning: --standard {standard} is now called {STANDARD_ALIASES[standard]}", markup=False)
    dataset_sets, protocol_sets, method_sets = split_sets(parse_sets(set_ or []))
    protocol = build_protocol(
        {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "standard": standard, "split": split},
        protocol_sets, dataset_sets,
    )
    request = RunRequest(
        methods=parse_list(method), bits=parse_bits(bits), seeds=parse_seeds(seeds), protocol=protocol,
        parts=PartChoice(backbone=backbone, backbone_mode=backbone_mode, head=head, loss=parse_loss(loss),
                         sets=method_sets),
        data_root=data_root, device=device,
        acceleration=acceleration_spec(precision, compile_, device_data_mb, cuda_graph),
        split_seeds=parse_seeds(split_seeds, "--split-seeds") if split_seeds else None,
    )
    execute_planned(host, plan_runs(host, request), execution, experiment)


def execute_planned(host: PluginHost, runs: list[PreparedRun], execution: ExecutionChoice,
                    experiment: str | None) -> None:
    """Open the store and the experiment (default: named after the runs' protocol), say what
    will run, and execute the runs under one parent run (:class:`ExecutionChoice`)."""
    from bench.cli.execution import open_experiment
    from bench.running.prepared import DeepRun
    from bench.tracking import tags as T

    protocol = runs[0].spec.protocol
    deep = [r for r in runs if isinstance(r, DeepRun)]  # a fitted run's fingerprint leaves out the budget
    data, fp = runs[0].data, (deep or runs)[0].protocol_fingerprint
    tracker, experiment_id = open_experiment(execution, experiment or f"facehash-{protocol.dataset}-{fp}")
    splits = sorted({run.data.checksum() for run in runs})
    identities = (f"{data.train_classes} training / {data.num_classes - data.train_classes} retrieval identities"
                  if protocol.split == "open-set" else f"{data.num_classes} identities")
    console.print(
        f"[bold]{len(runs)} run(s)[/] on {protocol.dataset} ({len(data.labels)} images, {identities}, "
        f"{protocol.split} split {', '.join(splits)}), protocol {fp}, store {tracker.uri}"
    )
    execution.execute(
        host, runs, execution.runner(host), tracker, experiment_id,
        parent_name=f"bench-run-{time.strftime('%Y%m%d-%H%M%S')}",
        parent_tags={T.PROTOCOL_FINGERPRINT: fp, T.EVAL_FINGERPRINT: runs[0].tags[T.EVAL_FINGERPRINT],
                     T.SPLIT_CHECKSUM: ",".join(splits), T.DATASET: protocol.dataset,
                     T.COMMAND: shlex.join(["bench", *sys.argv[1:]])},
    )
