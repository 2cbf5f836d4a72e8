"""Which code produced a report's runs: the code fingerprint tag of each run, and the
rows of the leaderboard whose cells come from more than one version of the code.

A row (method variant) is comparable across code lengths and seeds only when one version
of the code produced all its runs; a rerun with ``--force`` after an edit can leave one
cell from the new code and the others from the old. Runs stored before the tag existed
count as one version, ``unknown``.
"""

from __future__ import annotations

import pandas as pd

from bench.tracking import tags

UNKNOWN_CODE = "unknown"
MARK = "†"
SHORT = 8  # characters of a fingerprint shown in notes


def run_codes(runs: pd.DataFrame) -> pd.Series:
    """The code fingerprint of each run, ``unknown`` where the run has no such tag.

    >>> run_codes(pd.DataFrame({tags.column(tags.CODE_FINGERPRINT): ["ab12", None]})).tolist()
    ['ab12', 'unknown']
    >>> run_codes(pd.DataFrame({"run_id": ["r1"]})).tolist()
    ['unknown']
    """
    name = tags.column(tags.CODE_FINGERPRINT)
    if name not in runs:
        return pd.Series(UNKNOWN_CODE, index=runs.index)
    return runs[name].map(lambda v: UNKNOWN_CODE if v is None or pd.isna(v) else str(v))


def mixed_rows(cells: pd.DataFrame) -> pd.Series:
    """For each cell, whether its row's runs (every code length and seed) carry more than one
    code fingerprint (cells' ``codes``: their runs' fingerprints, comma-joined).

    >>> cells = pd.DataFrame({"variant_key": ["a", "a", "b"], "codes": ["x", "y", "x,unknown"]})
    >>> mixed_rows(cells).tolist()
    [True, True, True]
    >>> mixed_rows(cells.iloc[:1]).tolist()
    [False]
    """
    versions = cells.groupby("variant_key")["codes"].agg(lambda c: len({v for text in c for v in text.split(",")}))
    return cells["variant_key"].map(versions) > 1


def code_notes(cells: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """One note per flagged row: which code lengths and seeds each version of the code produced."""
    notes = []
    flagged = cells[cells["mixed_code"]]
    counted = set(",".join(flagged["run_ids"]).split(","))
    chosen = runs[runs["run_id"].isin(counted)].assign(code=run_codes(runs))
    for variant in dict.fromkeys(flagged["variant"]):
        group = chosen[chosen["variant"] == variant].sort_values(["bits", "seed"])
        listing = "; ".join(
            f"{code[:SHORT]}: " + ", ".join(f"{b} bits seed {s}" for b, s in zip(g["bits"], g["seed"], strict=True))
            for code, g in group.groupby("code", sort=True)
        )
        notes.append(f"{MARK} {variant}: its runs come from {group['code'].nunique()} versions of the code "
                     f"(code fingerprint {listing}); rerun the older ones to compare like with like")
    return notes
