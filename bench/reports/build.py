"""Assemble a leaderboard report from the store: cells with uncertainty, published rows,
plots, galleries, protocol, provenance and a reproduce command per row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bench.api.errors import BenchError
from bench.config.hashing import canonical_json
from bench.config.protocol import OpenSetSpec, ProtocolConfig
from bench.reports import plots
from bench.reports.code_versions import code_notes
from bench.reports.cost import accuracy_cost_plot, cost_table
from bench.reports.gallery import run_gallery
from bench.reports.published import gap_table, load_published
from bench.reports.query import TAG_COLUMN, RunSet, load_runs, method_tags
from bench.reports.seen_data import seen_data_notes
from bench.reports.table import add_uncertainty, legend, metric_means, summarise
from bench.tracking import tags
from bench.tracking.client import Tracker, flatten
from bench.tracking.reading import RunArtifacts, StoreReader

PROVENANCE_TAGS = (tags.GIT_COMMIT, tags.DEVICE, tags.DEVICE_NAME)
PROVENANCE_PREFIXES = (tags.VERSIONS_PREFIX, tags.ACCEL_PREFIX)
SPLIT_CHECKSUM = tags.column(tags.SPLIT_CHECKSUM)
CMC_METRICS = ("rank1", "rank5")  # identification metrics with per-query values (per_query.npz)


@dataclass
class ReportOptions:
    """What to report and how (the ``bench leaderboard`` options)."""

    metric: str = "map"
    reference: str | None = None
    published: Path | None = None
    resamples: int = 2000
    plots: bool = False
    gallery_queries: int = 0
    image_dir: Path | None = None


@dataclass
class ReportImage:
    """A PNG of the report, held in memory (its file may live in a temporary folder)."""

    title: str
    filename: str
    png: bytes


@dataclass
class Report:
    runset: RunSet
    options: ReportOptions
    cells: pd.DataFrame
    legend: list[str]  # the HTML table's notation (its cells show the tie bounds)
    table_legend: list[str]  # the text and Markdown tables' (their cells do not)
    published: pd.DataFrame | None = None
    gaps: pd.DataFrame | None = None
    plots: list[ReportImage] = field(default_factory=list)
    galleries: list[ReportImage] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, list[str]] = field(default_factory=dict)
    reproduce: dict[str, str] = field(default_factory=dict)
    variant_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    verification: pd.DataFrame = field(default_factory=pd.DataFrame)  # table.metric_means of the runs
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.cost.cost_table (runs measured by bench cost)

    @property
    def notes(self) -> list[str]:
        return self.runset.notes

    def meta(self) -> dict[str, Any]:
        """What the JSON export records beside the cells."""
        return {"metric": self.options.metric, "protocol_fingerprint": self.runset.fingerprint,
                "standard": self.runset.standard,
                "dataset": self.runset.dataset, "reference": self.options.reference,
                "fingerprints_found": list(self.runset.found["fingerprint"]), "notes": self.notes,
                "tracking_uri": self.runset.uri}


def build_report(
    uri: str, options: ReportOptions, experiment: str | None = None,
    dataset: str | None = None, protocol: str | None = None,
) -> Report:
    """Read the runs of one protocol and compute everything a report shows."""
    if options.reference and per_query_key(options.metric) is None:
        raise BenchError(f"--reference pairs per-query values, which runs store for map metrics only "
                         f"(map, map_legacy, map_best, ...), not {options.metric}; drop one of the two options")
    runset = load_runs(uri, experiment, dataset, protocol)
    runs = runset.runs
    cells = summarise(runs, options.metric)
    runset.notes += code_notes(cells, runs)
    seen = seen_data_notes(runs)
    runset.notes += seen
    reader = StoreReader(uri)
    with RunArtifacts(reader) as artifacts:
        several_splits = bool((cells["n_splits"] > 1).any())
        if per_query_key(options.metric) is not None or several_splits:
            per_query = {} if per_query_key(options.metric) is None else \
                _per_query(artifacts, runs, options.metric, runset.notes)
            run_values = dict(zip(runs["run_id"], runs[f"metrics.{options.metric}"], strict=True))
            cells = add_uncertainty(cells, per_query, options.reference, resamples=options.resamples,
                                    run_values=run_values)
        published = gaps = None
        if options.published:
            published = load_published(options.published, runset.dataset)
            gaps = gap_table(published, runs)
            if published.empty:
                runset.notes.append(f"{options.published} has no published rows for dataset '{runset.dataset}'")
        specs = _specs(artifacts, runs)
        one_split = cells["n_splits"] <= 1
        notation = [legend(options.metric, options.reference, bool(cells.loc[one_split, "ci_low"].notna().any()),
                           options.resamples, ties, bool(cells["mixed_code"].any()), several_splits) + seen
                    for ties in (bool(cells["tie_best"].notna().any()), False)]
        report = Report(runset, options, cells, *notation, published, gaps)
        report.protocol = _protocol(runset, specs)
        report.provenance = _provenance(runs, reader)
        report.reproduce = {v: reproduce_command(specs[v], cells[cells["variant"] == v], _precisions(runs, v))
                            for v in specs}
        report.variant_tags = {v: method_tags(g.iloc[0]) for v, g in runs.groupby("variant")}
        report.verification = metric_means(runs)
        report.cost = cost_table(runs, options.metric)
        if options.plots or options.gallery_queries:
            folder = options.image_dir or artifacts.folder / "images"
            if options.plots:
                report.plots = _plots(artifacts, runs, cells, options.metric, published, folder, runset.notes)
                costs = accuracy_cost_plot(report.cost, options.metric, folder / f"{options.metric}_vs_cost.png")
                if costs is not None:
                    report.plots.append(_image(f"{options.metric} against bytes per face and query time at 10^6 faces", costs))
            if options.gallery_queries:
                report.galleries = _galleries(artifacts, runs, specs, list(cells["variant"]), options.gallery_queries,
                                              folder, runset.notes)
    return report


def per_query_key(metric: str) -> str | None:
    """The per-query array behind a mean metric in ``per_query.npz`` (``None``: there is none).

    >>> per_query_key("map"), per_query_key("map_legacy"), per_query_key("precision_at_50"), per_query_key("rank1")
    ('ap', 'ap_legacy', None, 'rank1')
    """
    if metric in CMC_METRICS:
        return metric
    return "ap" + metric[3:] if metric.startswith("map") else None


def _per_query(artifacts: RunArtifacts, runs: pd.DataFrame, metric: str, notes: list[str]) -> dict[str, np.ndarray]:
    """Per-query values of ``metric`` by run id: ``per_query.npz`` (every map metric), else
    ``per_query_ap.npy`` (``map`` only, from the first evaluation engine)."""
    key, out, mismatched = per_query_key(metric), {}, []
    for _, run in runs.iterrows():
        values = None
        path = artifacts.get(run["run_id"], "per_query.npz")
        if path is not None:
            with np.load(path) as stored:
                values = stored[key] if key in stored.files else None
        if values is None and metric == "map":
            path = artifacts.get(run["run_id"], "per_query_ap.npy")
            values = None if path is None else np.load(path)
        if values is None:
            continue
        out[run["run_id"]] = np.asarray(values, dtype=np.float64)
        logged = float(run[f"metrics.{metric}"])
        if not np.isnan(logged) and abs(float(out[run["run_id"]].mean()) - logged) > 1e-6:
            mismatched.append(run[tags.column(tags.RUN_NAME)])
    if len(out) < len(runs):
        notes.append(f"{len(runs) - len(out)} run(s) store no per-query values of {metric}; "
                     "their cells have no interval or test")
    if mismatched:
        notes.append(f"per-query values do not average to the logged {metric} in {', '.join(mismatched)}")
    return out


def _specs(artifacts: RunArtifacts, runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The RunSpec dump (config.yaml) of each variant's first run."""
    specs = {}
    for variant, group in runs.groupby("variant"):
        path = artifacts.get(group.sort_values(["split_seed", "seed"])["run_id"].iloc[0], "config.yaml")
        if path is not None:
            specs[variant] = yaml.safe_load(path.read_text())
    return specs


def _protocol(runset: RunSet, specs: dict[str, dict]) -> dict[str, Any]:
    runs = runset.runs
    info = {"dataset": runset.dataset, "protocol fingerprint": runset.fingerprint,
            "split checksum": ", ".join(sorted(runs[SPLIT_CHECKSUM].unique()))}
    if specs:
        protocol = next(iter(specs.values()))["protocol"]
        info.update({
            "epochs (deep methods)": protocol["epochs"] or "each method's released budget",
            "batch size": protocol["batch_size"] or "each method's own",
            "standard": protocol["standard"], "input size": protocol["input_size"],
            "normalisation": protocol["normalisation"], "augmentation": protocol["augmentation"],
            "dataset options": json.dumps(protocol["dataset_options"]) if protocol["dataset_options"] else "defaults",
            "split": protocol.get("split", "closed-set") + (
                f" ({json.dumps(protocol.get('open_set') or OpenSetSpec().model_dump())})"  # omitted at defaults
                if protocol.get("split") == "open-set" else ""),
            "evaluation": json.dumps(protocol["evaluation"]),
        })
    counts = runs.groupby("variant")["seed"].nunique()
    info["runs"] = f"{len(runs)} ({', '.join(f'{v}: {n} seed(s)' for v, n in counts.items())})"
    info["split seeds"] = ", ".join(str(k) for k in sorted(runs["split_seed"].unique()))
    return info


def _provenance(runs: pd.DataFrame, reader: StoreReader) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"tracking store": [reader.uri]}
    for name in sorted(runs):
        tag = name[len(TAG_COLUMN):]
        if name.startswith(TAG_COLUMN) and (tag in PROVENANCE_TAGS or tag.startswith(PROVENANCE_PREFIXES)):
            values = sorted({str(v) for v in runs[name].dropna()})
            if values:
                out[tag] = values
    commands = [reader.tags(p).get(tags.COMMAND) for p in sorted(runs[tags.column(tags.PARENT_RUN)].unique())]
    out["bench run commands"] = [c for c in commands if c]
    return out


def _precisions(runs: pd.DataFrame, variant: str) -> set[str]:
    """The precisions (``accel.precision`` tags) the runs of ``variant`` trained in."""
    name = tags.column(f"{tags.ACCEL_PREFIX}precision")
    if name not in runs:
        return set()
    return {str(p) for p in runs.loc[runs["variant"] == variant, name].dropna()}


def reproduce_command(spec: dict[str, Any], cells: pd.DataFrame, precisions: set[str] = frozenset()) -> str:
    """A ``bench run`` command that reruns one row (its bits and seeds) under the same protocol;
    with ``--precision`` when the runs named one or trained in bf16 (``auto`` means fp32 on a
    CPU without native bf16).

    >>> spec = {"method": "lsh", "protocol": ProtocolConfig(epochs=3).model_dump(mode="json"),
    ...         "overrides": {"set": ["center=False"]}, "data_root": None}
    >>> reproduce_command(spec, pd.DataFrame({"bits": [24, 12], "seeds": ["0,1", "0"]}))
    'bench run --method lsh --bits 12,24 --seeds 0,1 --dataset orl --epochs 3 --set center=False'
    >>> reproduce_command({**spec, "overrides": {}}, pd.DataFrame({"bits": [12], "seeds": ["0"]}), {"bf16"})
    'bench run --method lsh --bits 12 --seeds 0 --dataset orl --epochs 3 --precision bf16'
    >>> spec["protocol"] = ProtocolConfig(epochs=3, split="open-set").model_dump(mode="json")
    >>> reproduce_command(spec, pd.DataFrame({"bits": [12], "seeds": ["0"], "splits": ["0,1"]}))
    'bench run --method lsh --bits 12 --seeds 0 --dataset orl --epochs 3 --split open-set --split-seeds 0,1 --set center=False'
    """
    protocol = spec["protocol"]
    bits = ",".join(str(b) for b in sorted(cells["bits"].unique()))
    seeds = sorted({int(s) for text in cells["seeds"] for s in str(text).split(",")})
    parts = ["bench run", f"--method {spec['method']}", f"--bits {bits}", f"--seeds {','.join(map(str, seeds))}",
             f"--dataset {protocol['dataset']}"]
    if protocol.get("epochs") is not None:
        parts.append(f"--epochs {protocol['epochs']}")
    if protocol.get("batch_size"):
        parts.append(f"--batch-size {protocol['batch_size']}")
    default = ProtocolConfig().model_dump(mode="json")
    if ProtocolConfig(standard=protocol["standard"]).standard != default["standard"]:
        parts.append(f"--standard {protocol['standard']}")
    if protocol.get("split", "closed-set") != "closed-set":
        parts.append(f"--split {protocol['split']}")
    splits = sorted({int(k) for text in cells.get("splits", pd.Series(["0"])) for k in str(text).split(",")})
    if splits != [0]:
        parts.append(f"--split-seeds {','.join(map(str, splits))}")
    overrides = spec.get("overrides") or {}
    for key in ("backbone", "head", "loss"):
        if overrides.get(key):
            parts.append(f"--{key} {_quote(overrides[key])}")
    parts += [f"--set {_quote(item)}" for item in overrides.get("set", [])]
    for key, value in (protocol.get("dataset_options") or {}).items():
        parts.append(f"--set {_quote(f'dataset.{key}={value}')}")
    skip = ("dataset", "dataset_options", "epochs", "batch_size", "standard", "split", "split_seed")
    wanted, base = flatten({k: v for k, v in protocol.items() if k not in skip}), flatten(default)
    parts += [f"--set {_quote(f'protocol.{k}={v}')}" for k, v in wanted.items() if base.get(k) != v]
    if spec.get("data_root"):
        parts.append(f"--data-root {_quote(spec['data_root'])}")
    asked = (spec.get("acceleration") or {}).get("precision", "auto")
    if asked != "auto" or "bf16" in precisions:
        parts.append(f"--precision {asked if asked != 'auto' else 'bf16'}")
    return " ".join(parts)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(str(text))


def _image(title: str, path: Path) -> ReportImage:
    return ReportImage(title, path.name, path.read_bytes())


def _plots(artifacts, runs, cells, metric, published, folder: Path, notes: list[str]) -> list[ReportImage]:
    variants = list(dict.fromkeys(cells["variant"]))
    out = [_image(f"{metric} vs code length", plots.metric_vs_bits(cells, metric, folder / f"{metric}_vs_bits.png", published))]
    curves: dict[tuple[str, int], list[dict]] = {}
    for _, run in runs.iterrows():
        path = artifacts.get(run["run_id"], "curves.json")
        if path is not None:
            curves.setdefault((run["variant"], int(run["bits"])), []).append(json.loads(path.read_text()))
    pr = plots.pr_curves(curves, variants, folder / "pr_curves.png")
    if pr is not None:
        out.append(_image("Precision-recall curves: precision over the queries whose Hamming ball holds "
                          "something (an empty ball has no precision); dotted, same colour: the share of "
                          "queries whose ball is empty at that radius", pr))
    else:
        notes.append("no run stored a precision-recall curve (curves.json); that plot is omitted")
    roc = plots.roc_curves(curves, variants, folder / "roc_curves.png")
    if roc is not None:
        out.append(_image("Verification ROC", roc))
    else:
        notes.append("no run stored an ROC curve (curves.json from an older version); that plot is omitted")
    pk = plots.precision_at_k(runs, variants, folder / "precision_at_k.png")
    if pk is not None:
        out.append(_image("Precision@K", pk))
    return out


def _galleries(artifacts, runs, specs, ranked, count: int, folder: Path, notes: list[str]) -> list[ReportImage]:
    """One gallery per (variant, bits) from its lowest seed's run, in table order."""
    from bench.api.pluginhost import default_host
    from bench.data.loading import dataset_for

    host, datasets, out = default_host(), {}, []
    rank = {v: i for i, v in enumerate(dict.fromkeys(ranked))}
    groups = sorted(runs.groupby(["variant", "bits"]), key=lambda item: (rank.get(item[0][0], len(rank)), item[0][1]))
    for (variant, bits), group in groups:
        run = group.sort_values(["split_seed", "seed"]).iloc[0]  # the run _specs describes
        codes = artifacts.get(run["run_id"], "codes.npz")
        if codes is None or variant not in specs:
            notes.append(f"no gallery for {variant} at {bits} bits: the run lacks codes.npz or config.yaml")
            continue
        protocol, data_root = ProtocolConfig.model_validate(specs[variant]["protocol"]), specs[variant].get("data_root")
        key = (data_root, canonical_json(protocol.model_dump(mode="json")))
        if key not in datasets:
            try:
                datasets[key] = dataset_for(host, protocol, data_root)
            except BenchError as exc:
                datasets[key] = exc
        data = datasets[key]
        if isinstance(data, BenchError) or data.checksum() != run[SPLIT_CHECKSUM]:
            reason = data if isinstance(data, BenchError) else "the rebuilt dataset's split checksum differs from the run's"
            notes.append(f"no gallery for {variant} at {bits} bits: {reason}")
            continue
        title = f"{variant}, {bits} bits, seed {run['seed']}: top 10 by Hamming distance (green: same identity)"
        name = f"gallery_{run['variant_key'].replace(':', '_')}_{bits}b.png"
        out.append(_image(f"{variant} · {bits} bits", run_gallery(codes, data.images, data.labels, title, folder / name, count)))
    return out


def log_to_parents(uri: str, parent_ids: list[str], images: list[ReportImage], extra: dict[str, str] | None = None) -> str:
    """Log the report's PNGs (and extra text files) as artifacts of each parent run; returns the folder."""
    import tempfile

    tracker = Tracker(uri)
    folder = "leaderboard"
    with tempfile.TemporaryDirectory(prefix="facehash-leaderboard-") as tmp:
        root = Path(tmp)
        for image in images:
            (root / image.filename).write_bytes(image.png)
        for name, text in (extra or {}).items():
            (root / name).write_text(text)
        for parent in parent_ids:
            tracker.log_artifacts(parent, root, folder)
    return folder
