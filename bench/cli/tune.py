"""``bench tune``: hyperparameter search with Optuna on the validation split, one study per
method, code length and split seed, then the best configuration run with ``--final-seeds`` through the
normal run path and evaluated on the queries (see docs/tuning.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    ExperimentOption,
    TrackingUriOption,
)

EXECUTORS = ("local", "ray")


@app.command("tune")
def tune_command(
    method: Annotated[str, typer.Option(help="Method name, or a comma list (one study each).")],
    trials: Annotated[int, typer.Option(help="Finished trials (complete or pruned) per study; a rerun continues the study up to this count.", min=1)] = 20,
    epochs: Annotated[int, typer.Option(help="Epoch budget of every trial and of the final runs (the protocol's).", min=1)] = DEFAULT_EPOCHS,
    bits: Annotated[str, typer.Option(help="Code lengths, comma separated (one study each).")] = "12",
    dataset: DatasetOption = DEFAULT_DATASET,
    data_root: DataRootOption = None,
    seed: Annotated[int, typer.Option(help="Seed of every trial's training and of the TPE sampler.")] = 0,
    final_seeds: Annotated[str, typer.Option(help="Seeds of the best configuration's final runs, comma separated.")] = "0,1,2",
    space: Annotated[Path | None, typer.Option(help="YAML search space replacing the methods' declared ones (key: {kind, low, high, log}; or method: {...}).")] = None,
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="Median pruning on the validation mAP of each epoch.")] = True,
    standard: Annotated[str, typer.Option(help="method-defaults or harness-standard.")] = DEFAULT_STANDARD,
    split: Annotated[str, typer.Option(help="closed-set or open-set (trials validate on held-out images of the training identities).")] = DEFAULT_SPLIT,
    split_seeds: Annotated[str | None, typer.Option(help="Tune on each of these splits, comma separated: one study per split, each on its own validation images (default: split 0).")] = None,
    batch_size: BatchSizeOption = None,
    backbone: BackboneOption = None,
    backbone_mode: BackboneModeOption = None,
    device: DeviceOption = "auto",
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value setting held fixed in every trial (repeatable).")] = None,
    executor: Annotated[str, typer.Option(help="local (Optuna in this process) or ray (Ray Tune with its Optuna searcher).")] = "local",
    max_parallel: Annotated[int | None, typer.Option(help="ray: trials at once (default: as many as the cluster fits).", min=1)] = None,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster (ray.init address); default: a local Ray instance.")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL (default: sqlite optuna.db beside the MLflow store).")] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: tune-<method>-<bits>b-<protocol>-<space>-s<seed>); one method and bit length only.")] = None,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
    output: Annotated[Path, typer.Option(help="Folder for run artifacts (and Ray Tune's files).")] = Path("bench-output"),
) -> None:
    """Tune each method's search space with Optuna on the validation split (same trials and budget
    for every method), then run the best configuration on the final seeds and evaluate it."""
    import dataclasses
    import shlex
    import sys
    import time

    from bench.api.errors import BenchError
    from bench.cli.execution import build_executor, command_host, execute_and_report
    from bench.cli.parsing import acceleration_spec, parse_bits, parse_list, parse_seeds, parse_sets
    from bench.config.settings import build_protocol, split_sets
    from bench.running.executors.base import in_process_plugins
    from bench.running.planning import check_split_seeds
    from bench.running.tuning.engine import final_runs, setup_study, tune_study
    from bench.running.tuning.space import method_space, read_space_file
    from bench.running.tuning.study import storage_url
    from bench.running.tuning.trial import TrialPlan
    from bench.tracking import tags as T
    from bench.tracking.client import Tracker, check_tracking_uri, resolve_tracking_uri

    if executor not in EXECUTORS:
        raise BenchError(f"--executor {executor}: bench tune runs trials with local (Optuna) or ray (Ray Tune)")
    if max_parallel is not None and executor != "ray":
        raise BenchError("--max-parallel applies to --executor ray; drop it or add --executor ray")
    host = command_host()
    methods, bit_list = parse_list(method), parse_bits(bits)
    splits = check_split_seeds(parse_seeds(split_seeds, "--split-seeds")) if split_seeds else [0]
    if study and len(methods) * len(bit_list) * len(splits) > 1:
        raise BenchError("--study names one study: give one --method, one --bits and at most one split seed with it")
    dataset_sets, protocol_sets, method_sets = split_sets(parse_sets(set_ or []))
    protocol = build_protocol({"dataset": dataset, "epochs": epochs, "batch_size": batch_size,
                               "standard": standard, "split": split}, protocol_sets, dataset_sets)
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    url = storage_url(uri, storage)
    from_file = read_space_file(space, methods) if space else None
    seeds = parse_seeds(final_seeds)
    accel = acceleration_spec()
    setups = []
    for name in methods:
        tuned = method_space(name, host.methods.get(name), from_file)
        for b, k in ((b, k) for b in bit_list for k in splits):
            plan = TrialPlan(method=name, bits=b, seed=seed, protocol=protocol.model_copy(update={"split_seed": k}),
                             sets=tuple(method_sets), data_root=data_root, device=device, acceleration=accel,
                             tracking_uri=uri, executor="ray" if executor == "ray" else "optuna",
                             plugins=in_process_plugins(host), backbone=backbone, backbone_mode=backbone_mode)
            setups.append(setup_study(host, plan, tuned, trials, storage=url, name=study, prune=prune))
    tracker = Tracker(uri)
    fp = setups[0].fingerprint
    experiment_id = tracker.experiment(experiment or f"facehash-{protocol.dataset}-{fp}")
    command = shlex.join(["bench", *sys.argv[1:]])
    ray_options, started = None, False
    if executor == "ray":
        from bench.running.executors.ray_cluster import connect, import_ray

        ray = import_ray()
        started = connect(ray, ray_address, max_parallel)
        ray_options = {"max_parallel": max_parallel, "storage_path": output / "ray-tune"}
    try:
        for setup in setups:
            setup.plan = dataclasses.replace(setup.plan, experiment_id=experiment_id)
            console.print(f"[bold]study {setup.name}[/] ({setup.trials} trials x {protocol.epochs} epochs, "
                          f"{executor}) in {url}")
            result = tune_study(host, setup, tracker, command, ray_options)
            if result.recovered:
                err_console.print(f"recovered trial(s) {result.recovered} left running by a killed process; "
                                  "their parameters were tried again", markup=False)
            console.print(f"{result.finished} finished trial(s) ({result.ran} now); best trial "
                          f"{result.best_number}: val_map {result.best_value:.4f} with {result.best_params}",
                          markup=False, highlight=False)
            runner = build_executor(host, executor, None, None)
            execute_and_report(
                host, final_runs(host, result, seeds), runner, tracker, experiment_id, output.resolve(),
                force=False, parent_name=f"tuned-{setup.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                parent_tags={T.TUNED_STUDY: setup.name, T.PROTOCOL_FINGERPRINT: setup.fingerprint,
                             T.DATASET: protocol.dataset, T.COMMAND: command},
            )
    finally:
        if started:
            ray.shutdown()
