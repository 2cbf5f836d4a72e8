"""Command-line options that several commands share, declared once, without heavy imports.

Every ``bench`` command module is imported to build ``bench --help``, so a command module
imports only typer, rich and modules like this one at its top; torch, MLflow, pandas, numpy
and ``bench.running`` / ``training`` / ``reports`` / ``tracking.reading`` are imported inside
the command function (tests/test_cli_output.py checks it).
"""

from __future__ import annotations

from typing import Annotated

import typer

ExecutorOption = Annotated[str, typer.Option(help="local (in process), processes (one worker per GPU or --max-parallel) or ray.")]
MaxParallelOption = Annotated[int | None, typer.Option(help="Runs at once (processes: worker count, default one per GPU or CPU core; ray: tasks in flight).", min=1)]
RayAddressOption = Annotated[str | None, typer.Option(help="Ray cluster to use (ray.init address, e.g. auto or ray://head:10001); default: a local Ray instance.")]
ForceOption = Annotated[bool, typer.Option(help="Rerun runs whose configuration already FINISHED in the store.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Results table with every metric and its tie bounds (wider than 80 columns).")]
# The protocol's defaults, spelled here so that `bench --help` need not import the config
# (pydantic, numpy); tests/test_cli_output.py checks them against ProtocolConfig().
DEFAULT_DATASET, DEFAULT_EPOCHS, DEFAULT_STANDARD, DEFAULT_SPLIT = "orl", 50, "method-defaults", "closed-set"

DatasetOption = Annotated[str, typer.Option(help="Dataset name.")]
DataRootOption = Annotated[str | None, typer.Option(help="Where the dataset's files are (folder or .npz).")]
BatchSizeOption = Annotated[int | None, typer.Option(help="Batch size for every deep method (default: each method's own).", min=1)]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
TrackingUriOption = Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")]
ExperimentOption = Annotated[str | None, typer.Option(help="MLflow experiment (default: facehash-<dataset>-<protocol fingerprint>).")]
BackboneOption = Annotated[str | None, typer.Option(help="Replace the method's backbone; a pretrained one (e.g. a face-recognition network) runs every deep method frozen unless --backbone-mode says otherwise.")]
BackboneModeOption = Annotated[str | None, typer.Option(help="frozen (the backbone's features computed once and cached, only the head and loss train) or fine-tune (the backbone trains at protocol.pretrained.lr_mult x the rate, default 0.1); default: frozen for a pretrained --backbone, else from scratch.")]
IfRunningOption = Annotated[str, typer.Option(help="A run another live process is training: wait for it, or skip it.")]
