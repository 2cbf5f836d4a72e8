"""Published numbers as reference rows (``--published FILE.yaml``) and the reproduction gap.

The file is a YAML list of rows ``{method, dataset, bits, map, source}``, e.g.::

    - {method: dcbh, dataset: youtube-faces, bits: 48, map: 0.9873, source: "Lin et al. 2017, Table 2"}

Our ``map`` (exact Hamming ranking) and ``map_legacy`` (the released code's buggy
distance, when the evaluation logged it) are shown beside each published number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError

from bench.api.errors import BenchError
from bench.api.methods import StrictModel
from bench.tracking import tags


class PublishedRow(StrictModel):
    method: str
    dataset: str
    bits: int = Field(ge=1)
    map: float = Field(ge=0.0, le=1.0)
    source: str


def load_published(path: Path, dataset: str | None = None) -> pd.DataFrame:
    """Validated rows of ``path`` (only ``dataset``'s when given); one-line errors."""
    if not path.is_file():
        raise BenchError(f"--published {path}: no such file; give a YAML list of rows (method, dataset, bits, map, source)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BenchError(f"--published {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, list):
        raise BenchError(f"--published {path}: expected a YAML list of rows (method, dataset, bits, map, source)")
    rows = []
    for i, item in enumerate(data):
        try:
            rows.append(PublishedRow.model_validate(item).model_dump())
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "row"
            raise BenchError(f"--published {path}: row {i + 1}, {where}: {err['msg']}") from None
    df = pd.DataFrame(rows, columns=list(PublishedRow.model_fields))
    if dataset is not None:
        df = df[df["dataset"] == dataset]
    return df.reset_index(drop=True)


def gap_table(published: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Published mAP beside our ``map`` and ``map_legacy`` (mean over seeds) per variant.

    Published methods match our runs by method name (case-insensitive).
    """
    rows = []
    for _, pub in published.iterrows():
        ours = runs[(runs[tags.column(tags.METHOD)].str.lower() == pub["method"].lower()) & (runs["bits"] == pub["bits"])]
        if ours.empty:
            rows.append(_gap_row(pub, "(not run)", None, None, 0))
            continue
        for variant, group in ours.groupby("variant", sort=True):
            rows.append(_gap_row(pub, variant, _mean(group, "map"), _mean(group, "map_legacy"), len(group)))
    return pd.DataFrame(rows, columns=["method", "bits", "published", "source", "variant", "map", "map_legacy", "n_seeds", "gap"])


def _gap_row(pub: pd.Series, variant: str, ours: float | None, legacy: float | None, n: int) -> dict:
    gap = ours - pub["map"] if ours is not None else None
    return {"method": pub["method"], "bits": int(pub["bits"]), "published": pub["map"], "source": pub["source"],
            "variant": variant, "map": ours, "map_legacy": legacy, "n_seeds": n, "gap": gap}


def _mean(group: pd.DataFrame, metric: str) -> float | None:
    column = f"metrics.{metric}"
    if column not in group or group[column].isna().all():
        return None
    return float(np.nanmean(group[column].to_numpy(dtype=np.float64)))
