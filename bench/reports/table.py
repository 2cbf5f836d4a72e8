"""The leaderboard: one cell per (method variant, bits) with mean +/- std over its runs
(seeds, and split seeds when the runs repeat the split), the number of runs, the best cell
per column, and (for ``map`` and ``rank1``/``rank5``) a bootstrap interval and a paired test
against a reference method: over queries for runs on one split, over runs paired by
(split seed, seed) for runs on several splits (their queries differ).

Cells are a tidy table (one row per cell, :data:`COLUMNS`); :func:`pivot` lays them out
as variant x bits for display.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.api.errors import BenchError
from bench.reports.code_versions import MARK, mixed_rows, run_codes
from bench.reports.stats import bootstrap_ci, holm, paired_signflip_test
from bench.tracking import tags

# Column -> dtype of the tidy cells table (CSV/JSON round-trip through these).
COLUMNS: dict[str, type] = {
    "variant": str, "variant_key": str, "method": str, "bits": int, "n_seeds": int, "seeds": str,
    "mean": float, "std": float, "ci_low": float, "ci_high": float, "queries": int,
    "p_value": float, "p_holm": float, "vs_reference": str, "best": bool, "run_ids": str,
    "tie_worst": float, "tie_best": float, "codes": str, "mixed_code": bool,
    "n_splits": int, "splits": str, "run_keys": str,  # run_keys: split_seed:seed per run, as run_ids
    "delta_reference": float,  # mean minus the reference's mean at the same code length (--reference)
}
# For map: the engine's expected AP averages over random orders inside equal distances;
# map_worst / map_best bound it, so their spread shows how much ties decide the number.
TIE_BOUNDS = {"map": ("map_worst", "map_best")}
LOWER_IS_BETTER = frozenset({"wall_seconds", "queries_without_relevant", "train_steps", "eer"})
LOWER_IS_BETTER_PREFIXES = ("empty_",)  # queries with nothing within the radius
ALPHA = 0.05
MARKERS = {"better": "▲", "worse": "▼", "reference": "ref", "n.s.": "", "": ""}


def summarise(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Cells of ``metric``: mean, sample std (ddof=1; NaN for one run) over the runs of every
    seed and split seed, seeds, split seeds, best marks,
    the code fingerprints of the cell's runs and whether its row mixes versions of the code.

    Rows are ranked by the variant's average cell mean (best first), then by bits.
    """
    column = f"metrics.{metric}"
    if column not in runs or runs[column].isna().all():
        logged = sorted(c[len("metrics."):] for c in runs if c.startswith("metrics."))
        raise BenchError(f"--metric {metric}: no run logged it; logged metrics: {', '.join(logged)}")
    rows = []
    runs = runs if "split_seed" in runs else runs.assign(split_seed=0)
    for (key, bits), group in runs.groupby(["variant_key", "bits"], sort=True):
        group = group[group[column].notna()].sort_values(["split_seed", "seed"])
        if group.empty:
            continue
        values = group[column].to_numpy(dtype=np.float64)
        rows.append({
            "variant": group["variant"].iloc[0], "variant_key": key,
            "method": group[tags.column(tags.METHOD)].iloc[0], "bits": int(bits),
            "n_seeds": len(values), "seeds": ",".join(str(s) for s in group["seed"]),
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "ci_low": math.nan, "ci_high": math.nan, "queries": 0,
            "p_value": math.nan, "p_holm": math.nan, "vs_reference": "", "best": False,
            "run_ids": ",".join(group["run_id"]),
            **_tie_bounds(group, metric),
            "codes": ",".join(sorted(set(run_codes(group)))), "mixed_code": False,
            "n_splits": int(group["split_seed"].nunique()),
            "splits": ",".join(str(s) for s in sorted(group["split_seed"].unique())),
            "run_keys": ",".join(f"{k}:{s}" for k, s in zip(group["split_seed"], group["seed"], strict=True)),
        })
    cells = pd.DataFrame(rows, columns=list(COLUMNS))
    cells["mixed_code"] = mixed_rows(cells)
    lower = lower_is_better(metric)
    cells["best"] = best_marks(cells, lower_is_better=lower)
    sign = 1.0 if lower else -1.0
    rank = cells.groupby("variant_key")["mean"].mean() * sign
    cells["_rank"] = cells["variant_key"].map(rank)
    cells = cells.sort_values(["_rank", "variant", "bits"]).drop(columns="_rank")
    return cells.reset_index(drop=True)


def _tie_bounds(group: pd.DataFrame, metric: str) -> dict[str, float]:
    worst, best = (f"metrics.{m}" for m in TIE_BOUNDS.get(metric, ("", "")))
    if worst not in group or best not in group or group[[worst, best]].isna().any().any():
        return {"tie_worst": math.nan, "tie_best": math.nan}
    return {"tie_worst": float(group[worst].mean()), "tie_best": float(group[best].mean())}


VERIFICATION = ("rank1", "rank5", "tar_at_far_1e-3", "tar_at_far_1e-2", "eer", "roc_auc")
# beside them: what a face costs to store (bits / 8 for a code, 512 for a 128-D float32 top line)
ROW_METRICS = (*VERIFICATION, "bytes_per_face")


def metric_means(runs: pd.DataFrame, metrics: tuple[str, ...] = ROW_METRICS) -> pd.DataFrame:
    """Mean over each (variant, bits)'s runs of every ``metrics`` entry the runs logged
    (rows in variant, bits order; empty when none logged them).

    >>> runs = pd.DataFrame({"variant": ["a", "a"], "bits": [12, 12], "metrics.eer": [0.25, 0.75]})
    >>> metric_means(runs).to_dict("records")
    [{'variant': 'a', 'bits': 12, 'runs': 2, 'eer': 0.5}]
    """
    columns = [f"metrics.{m}" for m in metrics if f"metrics.{m}" in runs and runs[f"metrics.{m}"].notna().any()]
    if not columns:
        return pd.DataFrame()
    grouped = runs.groupby(["variant", "bits"], sort=True)
    out = grouped[columns].mean().rename(columns=lambda c: c[len("metrics."):])
    out.insert(0, "runs", grouped.size())
    return out.reset_index()


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better.

    >>> lower_is_better("map"), lower_is_better("wall_seconds"), lower_is_better("empty_r2")
    (False, True, True)
    """
    return metric in LOWER_IS_BETTER or metric.startswith(LOWER_IS_BETTER_PREFIXES)


def best_marks(cells: pd.DataFrame, lower_is_better: bool = False) -> pd.Series:
    """True for the best mean of each bits column (every tied cell is best).

    >>> c = pd.DataFrame({"bits": [12, 12, 24, 24], "mean": [0.5, 0.7, 0.9, 0.9]})
    >>> best_marks(c).tolist()
    [False, True, True, True]
    """
    if cells.empty:
        return pd.Series([], dtype=bool)
    target = cells.groupby("bits")["mean"].transform("min" if lower_is_better else "max")
    return (cells["mean"] - target).abs() <= 1e-12


def seed_averaged(run_ids: list[str], per_query: dict[str, np.ndarray]) -> np.ndarray | None:
    """Per-query AP averaged over a cell's seeds, or ``None`` if any seed lacks it."""
    arrays = [per_query.get(r) for r in run_ids]
    if not arrays or any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return None
    return np.mean(np.stack(arrays), axis=0)


def find_reference(cells: pd.DataFrame, reference: str) -> str:
    """The variant key that ``--reference`` names (a method with one variant, or a label)."""
    by_label = cells.loc[cells["variant"] == reference, "variant_key"].unique()
    by_method = cells.loc[cells["method"] == reference, "variant_key"].unique()
    keys = by_label if len(by_label) else by_method
    if len(keys) == 1:
        return str(keys[0])
    labels = ", ".join(sorted(cells["variant"].unique()))
    if len(keys) > 1:
        raise BenchError(f"--reference {reference}: the method has several variants; name one of: {labels}")
    raise BenchError(f"--reference {reference}: no such method in these runs; known: {labels}")


def run_vector(cell: pd.Series, run_values: dict[str, float]) -> dict[str, float] | None:
    """The cell's run values by ``split_seed:seed``, or ``None`` if a run lacks its value.

    >>> cell = pd.Series({"run_ids": "a,b", "run_keys": "0:0,1:0"})
    >>> run_vector(cell, {"a": 0.5, "b": 0.7}), run_vector(cell, {"a": 0.5})
    ({'0:0': 0.5, '1:0': 0.7}, None)
    """
    ids, keys = cell["run_ids"].split(","), str(cell["run_keys"]).split(",")
    if any(r not in run_values or pd.isna(run_values[r]) for r in ids):
        return None
    return {k: float(run_values[r]) for k, r in zip(keys, ids, strict=True)}


def add_uncertainty(
    cells: pd.DataFrame,
    per_query: dict[str, np.ndarray],
    reference: str | None = None,
    resamples: int = 2000,
    seed: int = 0,
    run_values: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Fill the 95% bootstrap CI and the paired test against ``reference``.

    A cell on one split uses the per-query values averaged over its seeds, so both describe
    the uncertainty from the choice of queries; seed-to-seed spread is the std column. A cell
    whose runs span several split seeds (queries differ per split) uses its runs' values
    (``run_values`` by run id): the interval resamples runs and the test pairs the runs of
    equal (split seed, seed). p-values are Holm-adjusted over all tested cells; a cell is
    ``better``/``worse`` when the adjusted p < 0.05.
    """
    cells = cells.copy()
    averaged = {}
    for i, cell in cells.iterrows():
        if cell.get("n_splits", 1) > 1:
            by_run = run_vector(cell, run_values or {})
            if by_run is None:
                continue
            averaged[i] = by_run
            cells.loc[i, ["ci_low", "ci_high"]] = bootstrap_ci(np.array(list(by_run.values())),
                                                               resamples=resamples, seed=seed)
            continue
        vector = seed_averaged(cell["run_ids"].split(","), per_query)
        if vector is None:
            continue
        averaged[i] = vector
        cells.loc[i, ["ci_low", "ci_high"]] = bootstrap_ci(vector, resamples=resamples, seed=seed)
        cells.loc[i, "queries"] = len(vector)
    if not reference:
        return cells
    ref_key = find_reference(cells, reference)
    ref_rows = {int(c["bits"]): i for i, c in cells.iterrows() if c["variant_key"] == ref_key}
    tested = []
    for i, cell in cells.iterrows():
        j = ref_rows.get(int(cell["bits"]))
        if j is not None:
            cells.loc[i, "delta_reference"] = cell["mean"] - cells.loc[j, "mean"]
        if cell["variant_key"] == ref_key:
            cells.loc[i, "vs_reference"] = "reference"
        elif j is not None and i in averaged and j in averaged:
            a, b = averaged[i], averaged[j]
            if isinstance(a, dict) != isinstance(b, dict) or len(a) != len(b) or \
                    (isinstance(a, dict) and set(a) != set(b)):
                continue  # nothing to pair: other splits, seeds or queries
            if isinstance(a, dict):  # runs paired by (split seed, seed)
                a, b = np.array([a[k] for k in sorted(a)]), np.array([b[k] for k in sorted(a)])
            cells.loc[i, "p_value"] = paired_signflip_test(a, b, resamples=5 * resamples, seed=seed)
            tested.append(i)
    if tested:
        adjusted = holm(cells.loc[tested, "p_value"].tolist())
        for i, p in zip(tested, adjusted, strict=True):
            ref_mean = cells.loc[ref_rows[int(cells.loc[i, "bits"])], "mean"]
            direction = "better" if cells.loc[i, "mean"] > ref_mean else "worse"  # map metrics only
            cells.loc[i, "p_holm"] = p
            cells.loc[i, "vs_reference"] = direction if p < ALPHA else "n.s."
    return cells


def format_cell(cell: pd.Series, digits: int = 4, interval: bool = True) -> str:
    """``mean ± std`` plus ``[ci]``, the reference marker and the mixed-code mark; just the
    mean where there is no std (one seed).

    >>> format_cell(pd.Series({"mean": 0.5, "std": 0.01, "ci_low": 0.45, "ci_high": 0.55, "vs_reference": "better"}))
    '0.5000 ± 0.0100 [0.450, 0.550] ▲'
    >>> format_cell(pd.Series({"mean": 0.5, "std": math.nan, "mixed_code": True}))
    '0.5000 †'
    >>> format_cell(pd.Series({"mean": 0.5, "std": math.nan, "delta_reference": -0.125, "vs_reference": "n.s."}))
    '0.5000 Δ-0.125'
    """
    text = f"{cell['mean']:.{digits}f}"
    if not pd.isna(cell["std"]):
        text += f" ± {cell['std']:.{digits}f}"
    if interval and not pd.isna(cell.get("ci_low", math.nan)):
        text += f" [{cell['ci_low']:.{digits - 1}f}, {cell['ci_high']:.{digits - 1}f}]"
    delta = cell.get("delta_reference", math.nan)
    if not pd.isna(delta) and cell.get("vs_reference", "") != "reference":
        text += f" Δ{delta:+.{digits - 1}f}"
    marker = MARKERS.get(cell.get("vs_reference", ""), "")
    text = f"{text} {marker}".rstrip()
    return f"{text} {MARK}" if cell.get("mixed_code", False) else text


def pivot(cells: pd.DataFrame) -> tuple[list[str], list[int], dict[tuple[str, int], pd.Series]]:
    """Variant labels (ranked), bits (ascending) and the cell at each (variant, bits)."""
    variants = list(dict.fromkeys(cells["variant"]))
    bits = sorted(int(b) for b in cells["bits"].unique())
    grid = {(c["variant"], int(c["bits"])): c for _, c in cells.iterrows()}
    return variants, bits, grid


def legend(metric: str, reference: str | None, has_intervals: bool, resamples: int = 2000,
           has_ties: bool = False, mixed_code: bool = False, splits: bool = False) -> list[str]:
    """Lines explaining the table's notation."""
    best = "lowest" if lower_is_better(metric) else "highest"
    lines = [f"{metric}: mean ± sample std over seeds (n = seeds); the {best} mean per code length is in bold."]
    if splits:
        lines[0] = (f"{metric}: mean ± sample std over the runs of every split seed and seed (n = runs); the {best} "
                    "mean per code length is in bold.")
        lines.append("cells whose runs span several splits: [a, b] is a percentile bootstrap interval over the runs, "
                     "and the paired test pairs runs of equal (split seed, seed).")
    if has_intervals:
        lines.append(f"[a, b] / 95% CI: percentile bootstrap interval over queries of the seed-averaged per-query "
                     f"value behind {metric}; it shows how much the choice of queries moves the number.")
    if reference:
        lines.append(
            f"▲/▼: better/worse than {reference} at the same code length, paired sign-flip permutation "
            f"test over the same queries ({5 * resamples:,} random flips, so the smallest p before Holm's "
            f"correction is 1/{5 * resamples + 1:,}), Holm-adjusted p < 0.05; no marker: not significant. "
            f"Δ: the mean minus {reference}'s mean at the same code length."
        )
    if has_ties:
        lines.append("ties: mean over seeds of the mAP with the worst and the best order inside equal Hamming "
                     "distances; a wide range means the codes barely separate the gallery (e.g. collapsed codes).")
    if mixed_code:
        lines.append(f"{MARK}: the runs of this row (its code lengths and seeds) come from more than one version "
                     f"of the code (tag {tags.CODE_FINGERPRINT}; runs stored without it count as 'unknown'); "
                     "the notes say which.")
    return lines
