"""Read benchmark runs from MLflow: FINISHED child runs of one protocol, params cast from
strings, duplicates (same config hash) dropped, each run labelled with its method variant.

Runs are comparable only under one protocol fingerprint (tag
``facehash.protocol_fingerprint``): :func:`load_runs` lists the fingerprints it found,
uses the most recent one unless told otherwise, and refuses to mix them. Fitted runs, whose
fingerprint leaves out the training budget, join every group of trained runs with the same
evaluation fingerprint (:func:`fitted_beside`).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.api.errors import BenchError
from bench.config.hashing import stable_hash
from bench.config.protocol import STANDARD_ALIASES
from bench.tracking import tags
from bench.tracking.reading import StoreReader

FP_TAG = tags.column(tags.PROTOCOL_FINGERPRINT)
EVAL_TAG, KIND = tags.column(tags.EVAL_FINGERPRINT), tags.column(tags.METHOD_KIND)
METHOD, DATASET, PARENT = tags.column(tags.METHOD), tags.column(tags.DATASET), tags.column(tags.PARENT_RUN)
TAG_COLUMN = tags.column("")  # "tags.", the start of every tag's column
METHOD_PARAM_PREFIX = "params.method."
# Tags every child run carries (bench.running.identity); other ``facehash.*`` tags come from
# the method's own tags() (its deviations and options) and are shown per variant.
STANDARD_TAGS = frozenset({
    tags.METHOD, tags.BITS, tags.SEED, tags.DATASET, tags.SPLIT_CHECKSUM, tags.PROTOCOL_FINGERPRINT,
    tags.CONFIG_HASH, tags.CODE_FINGERPRINT, tags.STANDARD, tags.METHOD_KIND, tags.OVERRIDES, tags.DEVICE,
    tags.DEVICE_NAME, tags.KIND, tags.COMMAND, tags.RESUMED_FROM_EPOCH, tags.SWEEP_FILE,
    tags.SPLIT, tags.SPLIT_SEED,
    tags.EVAL_FINGERPRINT, tags.SELECTION_APPLIED, tags.OWNER, tags.HEARTBEAT,
})


def cast_param(text: Any) -> Any:
    """MLflow params are strings; turn JSON (and, from older runs, Python) literals back into values.

    >>> [cast_param(v) for v in ["12", "1e-08", "null", "true", "None", "True", "[0.9, 0.999]", "adam", None]]
    [12, 1e-08, None, True, None, True, [0.9, 0.999], 'adam', None]
    """
    if not isinstance(text, str):
        return None if text is None or (isinstance(text, float) and pd.isna(text)) else text
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def search_children(uri: str, experiment: str | None = None, dataset: str | None = None) -> pd.DataFrame:
    """FINISHED benchmark child runs (with a method tag and a parent, not tuning trials) in the store."""
    if experiment and dataset:
        raise BenchError("--experiment and --dataset both given; choose runs by one of them")
    df = StoreReader(uri).finished_runs(experiment, {tags.DATASET: dataset} if dataset else None)
    if df.empty or any(c not in df for c in (METHOD, PARENT, FP_TAG)):
        scope = f"experiment '{experiment}'" if experiment else f"dataset '{dataset}'" if dataset else "any experiment"
        raise BenchError(f"no finished benchmark runs for {scope} in {uri}; run `bench run --method ...` first")
    children = df[df[METHOD].notna() & df[PARENT].notna()]
    kind = tags.column(tags.KIND)
    if kind in children:  # bench tune's trial runs are scored on validation only: never ranked
        children = children[children[kind] != "trial"]
    return children.reset_index(drop=True)


def fitted_beside(df: pd.DataFrame) -> dict[str, pd.Series]:
    """For each fingerprint of trained runs, which runs a report of it compares: its own,
    and the fitted runs (whose fingerprint leaves out the training budget) that share its
    evaluation fingerprint (tag ``facehash.eval_fingerprint``). A fingerprint held by
    fitted runs only, that no trained group takes in, stands alone."""
    fitted = df[KIND].eq("fitted") if KIND in df else pd.Series(False, index=df.index)
    evaluation = df[EVAL_TAG] if EVAL_TAG in df else pd.Series(None, index=df.index, dtype=object)
    groups: dict[str, pd.Series] = {}
    for fp in df.loc[~fitted, FP_TAG].unique():
        shared = set(evaluation[(df[FP_TAG] == fp) & ~fitted].dropna())
        groups[fp] = (df[FP_TAG] == fp) | (fitted & evaluation.isin(shared))
    taken = pd.Series(False, index=df.index)
    for mask in groups.values():
        taken |= mask & fitted
    for fp in df.loc[fitted & ~taken, FP_TAG].unique():
        groups.setdefault(fp, df[FP_TAG] == fp)
    return groups


def list_fingerprints(df: pd.DataFrame) -> pd.DataFrame:
    """One row per protocol fingerprint found (fitted runs counted with every trained group
    they stand beside, see :func:`fitted_beside`): dataset, runs, methods, latest start,
    newest first."""
    rows = []
    for fp, mask in fitted_beside(df).items():
        group = df[mask]
        rows.append({
            "fingerprint": fp, "dataset": group[DATASET].iloc[0], "runs": len(group),
            "methods": ",".join(sorted(group[METHOD].unique())),
            "standard": standard_label(group),
            "latest": group["start_time"].max(),
        })
    return pd.DataFrame(rows).sort_values("latest", ascending=False).reset_index(drop=True)


def standard_label(runs: pd.DataFrame) -> str:
    """The standard of ``runs`` from their tags, the former name ``as-published`` read as
    ``method-defaults`` (one fingerprint holds one standard: it is part of the protocol).

    >>> standard_label(pd.DataFrame({tags.column(tags.STANDARD): ["as-published"]}))
    'method-defaults'
    """
    column = tags.column(tags.STANDARD)
    values = sorted({STANDARD_ALIASES.get(v, v) for v in runs[column].dropna()}) if column in runs else []
    return ",".join(values) or "unknown"


def choose_fingerprint(found: pd.DataFrame, requested: str | None) -> str:
    """The fingerprint to report: ``requested`` (a unique prefix), else the most recent.

    Asking for more than one fingerprint is refused: runs under different protocols are
    never pooled.
    """
    if not requested:
        return str(found["fingerprint"].iloc[0])
    parts = [p.strip() for p in requested.split(",") if p.strip()]
    if len(parts) != 1:
        raise BenchError(
            f"--protocol {requested}: runs under different protocol fingerprints are never compared; "
            "choose one (bench leaderboard lists the fingerprints it finds)"
        )
    matches = [fp for fp in found["fingerprint"] if str(fp).startswith(parts[0])]
    if len(matches) != 1:
        known = ", ".join(found["fingerprint"])
        what = "matches no" if not matches else "is ambiguous among the"
        raise BenchError(f"--protocol {parts[0]} {what} fingerprints found ({known}); give one of them")
    return str(matches[0])


def dedupe(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep the most recent run of each config hash; return the rest's count."""
    ordered = df.sort_values("start_time", ascending=False)
    kept = ordered.drop_duplicates(tags.column(tags.CONFIG_HASH), keep="first")
    return kept.sort_index().reset_index(drop=True), len(df) - len(kept)


def method_settings(row: pd.Series) -> dict[str, Any]:
    """A run's method config from its ``method.*`` params (cast), without the name."""
    return {
        key[len(METHOD_PARAM_PREFIX):]: cast_param(value)
        for key, value in row.items()
        if key.startswith(METHOD_PARAM_PREFIX) and key != "params.method.name" and not _missing(value)
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def label_variants(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``variant_key`` (method + config hash) and a readable ``variant`` label.

    A method run under one config is labelled by its name; several configs of one method
    are labelled by the settings that tell them apart, e.g. ``dcbh [variant=intended]``.
    """
    df = df.copy()
    settings = [method_settings(row) for _, row in df.iterrows()]
    df["variant_key"] = [
        f"{m}:{stable_hash(s)[:8]}" for m, s in zip(df[METHOD], settings, strict=True)
    ]
    config_of = dict(zip(df["variant_key"], settings, strict=True))
    labels = {}
    for method, group in df.groupby(METHOD):
        configs = {k: config_of[k] for k in dict.fromkeys(group["variant_key"])}
        if len(configs) == 1:
            labels.update({k: str(method) for k in configs})
            continue
        names = sorted({n for c in configs.values() for n in c})
        differing = [n for n in names if len({json.dumps(c.get(n), default=str) for c in configs.values()}) > 1]
        for key, config in configs.items():
            shown = ", ".join(f"{n}={config.get(n)}" for n in differing[:3])
            more = f", +{len(differing) - 3} more" if len(differing) > 3 else ""
            labels[key] = f"{method} [{shown}{more}]"
    df["variant"] = df["variant_key"].map(labels)
    df["bits"] = df[tags.column(tags.BITS)].astype(int)
    df["seed"] = df[tags.column(tags.SEED)].astype(int)
    split_seed = tags.column(tags.SPLIT_SEED)  # runs stored before split seeds: seed 0
    df["split_seed"] = df[split_seed].fillna("0").astype(int) if split_seed in df else 0
    return df


def method_tags(row: pd.Series) -> dict[str, str]:
    """The method's own tags (deviations, options) of a run."""
    out = {}
    for key, value in row.items():
        tag = key[len(TAG_COLUMN):]
        if key.startswith(tags.column(tags.PREFIX)) and not _missing(value) and tag not in STANDARD_TAGS \
                and not tag.startswith(tags.ACCEL_PREFIX):  # execution settings: provenance
            out[tag[len(tags.PREFIX):]] = str(value)
    return out


@dataclass
class RunSet:
    """The runs of one protocol that a report compares."""

    uri: str
    runs: pd.DataFrame
    fingerprint: str
    found: pd.DataFrame
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def dataset(self) -> str:
        return str(self.runs[DATASET].iloc[0])

    @property
    def standard(self) -> str:
        """The runs' standard (``released``, ``method-defaults``, ``harness-standard``)."""
        return standard_label(self.runs)

    @property
    def parent_ids(self) -> list[str]:
        return sorted(self.runs[PARENT].unique())


def load_runs(
    uri: str, experiment: str | None = None, dataset: str | None = None, protocol: str | None = None
) -> RunSet:
    """Search, select one protocol fingerprint, dedupe and label the runs."""
    df = search_children(uri, experiment, dataset)
    found = list_fingerprints(df)
    fp = choose_fingerprint(found, protocol)
    chosen = df[fitted_beside(df)[fp]]
    runs, dropped = dedupe(chosen)
    notes = []
    beside = sorted(chosen.loc[chosen[FP_TAG] != fp, METHOD].unique())
    if beside:
        notes.append(f"fitted method(s) {', '.join(beside)} shown beside protocol {fp}: they do not train, so their "
                     "fingerprint leaves out the training budget (same data, split and evaluation)")
    if dropped:
        notes.append(f"{dropped} repeated run(s) with an identical config hash were dropped (kept the most recent)")
    return RunSet(uri, label_variants(runs), fp, found, dropped, notes)
