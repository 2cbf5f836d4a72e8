"""``bench eval RUN_ID``: re-evaluate a finished run from its stored codes, log to the same run.

Reads the run's ``codes.npz`` artifact (packed gallery/query codes and labels, ``bits``)
and its ``protocol.evaluation.*`` parameters, evaluates without retraining, logs the
metrics and the evaluation artifacts (per-query AP, PR curve) back to that run and prints
the old and new values side by side.
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bench.api.errors import BenchError
from bench.cli.app import app, console, err_console
from bench.cli.results_table import without_relevant
from bench.tracking import tags

if TYPE_CHECKING:  # heavy modules are imported inside the command (`bench --help` stays fast)
    import numpy as np

    from bench.config.protocol import EvaluationSpec
    from bench.tracking.reading import StoreReader

FIXED_METRICS = ("map", "map_best", "map_worst", "map_stable", "precision_at_r", "queries_without_relevant",
                 "tar_at_far_1e-3", "tar_at_far_1e-2", "eer", "roc_auc", "rank1", "rank5")
PATTERN = re.compile(r"^(precision_at|map_at)_(\d+)$|^(precision|recall|empty)_r(\d+)$")


@app.command("eval")
def eval_command(
    run_id: Annotated[str, typer.Argument(help="A finished child run of `bench run`: its MLflow run id, or its name (dcbh-12b-s0) or an id prefix where unique (see `bench runs`).")],
    metric: Annotated[list[str] | None, typer.Option(help="Metric to compute and log (repeatable or comma list); a new K or radius is added to the run's protocol (default: all).")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Re-evaluate a finished run from its stored codes (no retraining) and log the result to it."""
    from bench.api.pluginhost import default_host
    from bench.evaluation import evaluate, save_evaluation_artifacts
    from bench.evaluation.codes import unpack_codes
    from bench.evaluation.plugin_metrics import registered_metrics
    from bench.tracking.client import Tracker, check_tracking_uri, resolve_tracking_uri
    from bench.tracking.reading import StoreReader

    requested = [name for item in metric or [] for name in item.split(",") if name.strip()]
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    reader = StoreReader(uri)
    run = reader.find(run_id)
    run_id = run.info.run_id
    spec = spec_for(run.data.params, requested)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        codes = _load_codes(reader, run_id, Path(tmp))
        bits = int(codes["bits"])
        evaluation = evaluate(
            unpack_codes(codes["query_codes"], bits), codes["query_labels"],
            unpack_codes(codes["gallery_codes"], bits), codes["gallery_labels"], spec,
            device=None if device == "auto" else device,
            plugin_metrics=registered_metrics(default_host(), requested or None, opt_in_metrics=spec.opt_in_metrics),
        )
        chosen = {k: v for k, v in evaluation.metrics.items() if not requested or k in requested}
        folder = Path(tmp) / "evaluation"
        save_evaluation_artifacts(evaluation, folder)
        tracker = Tracker(uri)
        tracker.log_metrics(run_id, chosen)
        tracker.log_artifacts(run_id, folder)
    tracker.set_tags(run_id, {tags.REEVALUATED: time.strftime("%Y-%m-%dT%H:%M:%S")})
    table = Table(title=f"run {run_id}: {len(codes['query_labels'])} queries x {len(codes['gallery_labels'])} gallery, {bits} bits")
    for column in ("metric", "logged before", "now"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, value in chosen.items():
        before = run.data.metrics.get(name)
        table.add_row(name, "-" if before is None else f"{before:.4f}", f"{value:.4f}")
    console.print(table)
    if missing := without_relevant(evaluation.metrics):
        err_console.print(f"warning: {missing} quer(y/ies) have no gallery image of their identity; each scores 0 "
                          "and lowers map (queries_without_relevant)", markup=False, highlight=False)


def spec_for(params: dict[str, str], requested: list[str]) -> EvaluationSpec:
    """The run's evaluation spec (``protocol.evaluation.*`` params), extended so that every
    requested metric is computed.

    >>> s = spec_for({"protocol.evaluation.precision_at": "[50]", "protocol.evaluation.radius": "2"},
    ...              ["map", "precision_at_10", "map_at_100"])
    >>> s.precision_at, s.radius, s.map_at
    ([50, 10], 2, [100])
    >>> spec_for({}, ["precision_at_10"]).precision_at
    [10]
    """
    from bench.api.pluginhost import default_host
    from bench.config.protocol import EvaluationSpec
    from bench.evaluation.plugin_metrics import opt_in_names, registered_metrics

    prefix = "protocol.evaluation."
    raw = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    # lists of names are logged as Python reprs (['a']), numbers and lists of numbers as JSON
    values = {k: (v if k == "map_at_normalisation" else ast.literal_eval(v) if k == "opt_in_metrics"
                  else json.loads(v)) for k, v in raw.items()}
    spec = EvaluationSpec(**values)
    host = default_host()
    fixed = (*FIXED_METRICS, *registered_metrics(host), *opt_in_names(host))
    radii = set()
    for name in requested:
        found = PATTERN.match(name)
        if name in fixed:
            continue
        if found is None:
            raise BenchError(
                f"--metric {name}: unknown; use {', '.join(fixed)}, precision_at_K, "
                "map_at_K, precision_rN, recall_rN or empty_rN"
            )
        if found.group(1):
            field = "precision_at" if found.group(1) == "precision_at" else "map_at"
            ks = getattr(spec, field) or []  # precision_at None (suit the gallery): just the asked K
            if int(found.group(2)) not in ks:
                setattr(spec, field, [*ks, int(found.group(2))])
        else:
            radii.add(int(found.group(4)))
    if len(radii) > 1:
        raise BenchError(f"--metric: one Hamming radius per evaluation, got {sorted(radii)}; run bench eval once per radius")
    if radii:
        spec.radius = radii.pop()
    return spec


def _load_codes(reader: StoreReader, run_id: str, folder: Path) -> dict[str, np.ndarray]:
    import numpy as np

    artifacts = reader.artifact_paths(run_id)
    if "codes.npz" not in artifacts and "embeddings.npz" in artifacts:
        raise BenchError(f"run '{run_id}' is a float top line (embeddings.npz, ranked by cosine distance, no codes); "
                         "bench eval re-evaluates codes only: re-run it with `bench run --force`")
    if "codes.npz" not in artifacts:
        raise BenchError(
            f"run '{run_id}' has no codes.npz artifact; only finished child runs of `bench run` store codes"
        )
    path = reader.download(run_id, "codes.npz", folder)
    damaged = f"codes.npz of run '{run_id}' is damaged"
    fix = "re-run the run with `bench run --force` to store its codes again"
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"gallery_codes", "query_codes", "gallery_labels", "query_labels", "bits"} - set(data.files)
            if missing:
                raise BenchError(f"codes.npz of run '{run_id}' lacks {', '.join(sorted(missing))}; re-run it with `bench run`")
            codes = {k: data[k] for k in data.files}
    except BenchError:
        raise
    except (OSError, ValueError, EOFError, KeyError) as exc:  # not a zip, truncated, or object arrays
        raise BenchError(f"{damaged} ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'unreadable'}); {fix}") from None
    for name in ("gallery_codes", "query_codes"):
        if codes[name].dtype.kind not in "uib" or codes[name].ndim != 2:
            raise BenchError(f"{damaged}: {name} has dtype {codes[name].dtype} and shape {codes[name].shape}, "
                             f"not packed 2-D integer codes; {fix}")
    if codes["bits"].shape != () or codes["bits"].dtype.kind not in "iu" or not 0 < int(codes["bits"]) <= 8 * codes["query_codes"].shape[1] * codes["query_codes"].itemsize:
        raise BenchError(f"{damaged}: bits is {codes['bits']!r}; {fix}")
    return codes
