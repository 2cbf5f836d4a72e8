"""``bench leaderboard --tuned``: each method's default configuration beside the
configurations ``bench tune`` chose for it, with the tuning budget behind each.

A run is *tuned* when it carries ``facehash.tuned.study`` (the final runs of a study's best
configuration); a run is the *default* when it overrides nothing (no ``--set``, part or loss
change) and is not tuned. Both are ranked on the same metric under the same protocol
fingerprint, over their seeds.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.api.errors import BenchError
from bench.reports.table import format_cell
from bench.tracking import tags

COLUMNS = ("method", "bits", "default", "tuned", "delta", "trials", "epochs_per_trial", "study",
           "tuned_params")
BUDGET_TAGS = {"study": tags.TUNED_STUDY, "trials": tags.TUNED_TRIALS,
               "epochs_per_trial": tags.TUNED_TRIAL_EPOCHS, "tuned_params": tags.TUNED_PARAMS}


def _first(group: pd.DataFrame, tag: str) -> str:
    column = tags.column(tag)
    values = group[column].dropna() if column in group else pd.Series(dtype=object)
    return str(values.iloc[0]) if len(values) else ""


def tuned_comparison(runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per tuned configuration and code length: the default cell, the tuned cell
    (``mean ± std`` over seeds, ``n=``), their difference of means and the tuning budget.

    ``runs``: the labelled runs of one protocol (:func:`bench.reports.query.load_runs`);
    ``cells``: their summary (:func:`bench.reports.table.summarise`)."""
    study = tags.column(tags.TUNED_STUDY)
    overrides = tags.column(tags.OVERRIDES)
    if study not in runs or runs[study].isna().all():
        raise BenchError("no tuned runs under this protocol; run bench tune --method ... first "
                         "(with the same --epochs and dataset as the default runs)")
    by_variant = {key: group for key, group in runs.groupby("variant_key")}
    tuned_keys = [k for k, g in by_variant.items() if g[study].notna().any()]
    default_keys = {k for k, g in by_variant.items()
                    if g[study].isna().all() and (g[overrides].fillna("{}") == "{}").all()}
    rows = []
    for key in tuned_keys:
        group = by_variant[key]
        for _, cell in cells[cells["variant_key"] == key].iterrows():
            same = cells[(cells["method"] == cell["method"]) & (cells["bits"] == cell["bits"])
                         & cells["variant_key"].isin(default_keys)]
            default = same.iloc[0] if len(same) else None
            rows.append({
                "method": cell["method"], "bits": int(cell["bits"]),
                "default": "–" if default is None else _shown(default),
                "tuned": _shown(cell),
                "delta": math.nan if default is None else float(cell["mean"] - default["mean"]),
                **{name: _first(group, tag) for name, tag in BUDGET_TAGS.items()},
            })
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values(["method", "bits"]).reset_index(drop=True)


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
