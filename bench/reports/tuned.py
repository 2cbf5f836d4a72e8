"""``bench leaderboard --tuned``: each method's default configuration beside the
configurations ``bench tune`` chose for it, with the tuning budget behind each.

A run is *tuned* when it carries ``facehash.tuned.study`` (the final runs of a study's best
configuration); a run is the *default* when it overrides nothing (no ``--set``, part or loss
change; the protocol's pretrained network, ``--backbone`` with its mode, is no override: it is
in the protocol fingerprint) and is not tuned. Both are ranked on the same metric under the same protocol
fingerprint, over their seeds and splits.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from bench.api.errors import BenchError
from bench.reports.table import format_cell, summarise
from bench.tracking import tags

COLUMNS = ("method", "bits", "default", "tuned", "delta", "trials", "epochs_per_trial", "study",
           "tuned_params")
BUDGET_TAGS = {"trials": tags.TUNED_TRIALS, "epochs_per_trial": tags.TUNED_TRIAL_EPOCHS}


def _first(group: pd.DataFrame, tag: str) -> str:
    column = tags.column(tag)
    values = group[column].dropna() if column in group else pd.Series(dtype=object)
    return str(values.iloc[0]) if len(values) else ""


def overrides_nothing(text: str) -> bool:
    """Whether a run's overrides tag (JSON) changes nothing of its method's defaults: empty,
    or only the protocol's pretrained network (``backbone`` with its ``backbone_mode``).

    >>> overrides_nothing("{}"), overrides_nothing('{"backbone": "dlib-resnet", "backbone_mode": "frozen"}')
    (True, True)
    >>> overrides_nothing('{"backbone": "resnet18"}'), overrides_nothing('{"set": ["optimizer.lr=0.1"]}')
    (False, False)
    """
    given = json.loads(text or "{}")
    if "backbone_mode" in given:  # a pretrained network is the protocol's (fingerprinted), not a variant
        given = {k: v for k, v in given.items() if k not in ("backbone", "backbone_mode")}
    return not given


def tuned_comparison(runs: pd.DataFrame, cells: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per tuning procedure and code length: the default cell, the tuned cell
    (``mean ± std`` over every seed and split, ``n=``), their difference of means and the
    tuning budget. A procedure is one study, or one study per split seed (``bench tune
    --split-seeds``: tag ``facehash.tuned.family``), whose final runs are pooled as the default
    runs of every split are.

    ``runs``: the labelled runs of one protocol (:func:`bench.reports.query.load_runs`);
    ``cells``: their summary (:func:`bench.reports.table.summarise`) of ``metric``."""
    study = tags.column(tags.TUNED_STUDY)
    overrides = tags.column(tags.OVERRIDES)
    if study not in runs or runs[study].isna().all():
        raise BenchError("no tuned runs under this protocol; run bench tune --method ... first "
                         "(with the same --epochs and dataset as the default runs)")
    default_keys = {k for k, g in runs.groupby("variant_key")
                    if g[study].isna().all() and g[overrides].fillna("{}").map(overrides_nothing).all()}
    tuned = runs[runs[study].notna()]
    family = tags.column(tags.TUNED_FAMILY)
    procedure = tuned[family].fillna(tuned[study]) if family in tuned else tuned[study]
    tuned = tuned.assign(variant_key=procedure, variant=procedure)
    rows = []
    for _, cell in summarise(tuned, metric).iterrows():
        group = tuned[tuned["variant_key"] == cell["variant_key"]]
        same = cells[(cells["method"] == cell["method"]) & (cells["bits"] == cell["bits"])
                     & cells["variant_key"].isin(default_keys)]
        default = same.iloc[0] if len(same) else None
        rows.append({
            "method": cell["method"], "bits": int(cell["bits"]),
            "default": "–" if default is None else _shown(default),
            "tuned": _shown(cell),
            "delta": math.nan if default is None else float(cell["mean"] - default["mean"]),
            **{name: _first(group, tag) for name, tag in BUDGET_TAGS.items()},
            "study": cell["variant_key"], "tuned_params": _params_by_split(group),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values(["method", "bits"]).reset_index(drop=True)


def _params_by_split(group: pd.DataFrame) -> str:
    """The chosen values: one JSON object, or ``k<split>: {...}`` per split when several."""
    column = tags.column(tags.TUNED_PARAMS)
    splits = group["split_seed"] if "split_seed" in group else pd.Series(0, index=group.index)
    chosen = {int(k): str(g[column].dropna().iloc[0]) for k, g in group.groupby(splits) if g[column].notna().any()}
    if len(chosen) == 1:
        return next(iter(chosen.values()))
    return "; ".join(f"k{k}: {params}" for k, params in sorted(chosen.items()))


def _shown(cell: pd.Series) -> str:
    return f"{format_cell(cell, interval=False)} n={int(cell['n_seeds'])}"


def comparison_markdown(frame: pd.DataFrame, metric: str) -> str:
    """The comparison as a Markdown table.

    >>> frame = pd.DataFrame([{"method": "ddh", "bits": 12, "default": "0.1 ± - n=1", "tuned": "0.2 ± - n=1",
    ...                        "delta": 0.1, "trials": "4", "epochs_per_trial": "2", "study": "s", "tuned_params": "{}"}])
    >>> print(comparison_markdown(frame, "map"))
    | method | bits | default map | tuned map | delta | trials x epochs | study |
    | --- | --- | --- | --- | --- | --- | --- |
    | ddh | 12 | 0.1 ± - n=1 | 0.2 ± - n=1 | +0.1000 | 4 x 2 | s |
    <BLANKLINE>
    """
    lines = [f"| method | bits | default {metric} | tuned {metric} | delta | trials x epochs | study |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in frame.itertuples():
        delta = "–" if math.isnan(row.delta) else f"{row.delta:+.4f}"
        lines.append(f"| {row.method} | {row.bits} | {row.default} | {row.tuned} | {delta} | "
                     f"{row.trials} x {row.epochs_per_trial} | {row.study} |")
    return "\n".join(lines) + "\n"
