"""Write the leaderboard cells as Markdown, CSV or JSON, and read CSV/JSON back exactly."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pandas as pd

from bench.reports.table import COLUMNS, format_cell, pivot


def to_markdown(cells: pd.DataFrame, published: pd.DataFrame | None = None, legend: list[str] = ()) -> str:
    """A variant x bits Markdown table (best cells bold), published reference rows, legend."""
    variants, bits, grid = pivot(cells)
    extra_bits = sorted(set(bits) | set(published["bits"])) if published is not None and len(published) else bits
    header = ["method", *[f"{b} bits" for b in extra_bits]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(extra_bits)) + "|"]
    for variant in variants:
        row = [_escape(variant)]
        for b in extra_bits:
            cell = grid.get((variant, b))
            if cell is None:
                row.append("–")
                continue
            text = f"{format_cell(cell)} (n={cell['n_seeds']})"
            row.append(f"**{text}**" if cell["best"] else text)
        lines.append("| " + " | ".join(row) + " |")
    for label, values in published_rows(published):
        lines.append("| " + " | ".join([_escape(label)] + [values.get(b, "–") for b in extra_bits]) + " |")
    return "\n".join(lines + [""] + [f"- {line}" for line in legend]) + "\n"


def published_rows(published: pd.DataFrame | None) -> list[tuple[str, dict[int, str]]]:
    """``(label, bits -> text)`` for each published method/source, in file order."""
    if published is None or published.empty:
        return []
    out: dict[str, dict[int, str]] = {}
    for _, row in published.iterrows():
        label = f"{row['method']} (published: {row['source']})"
        out.setdefault(label, {})[int(row["bits"])] = f"{row['map']:.4f}"
    return list(out.items())


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def cells_to_csv(cells: pd.DataFrame) -> str:
    """CSV text of the tidy cells (floats written at full precision)."""
    return cells[list(COLUMNS)].to_csv(index=False)


def cells_from_csv(text: str) -> pd.DataFrame:
    """Inverse of :func:`cells_to_csv`."""
    df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values={c: [""] for c, t in COLUMNS.items() if t is float})
    return _typed(df)


def to_json(cells: pd.DataFrame, meta: dict[str, Any]) -> str:
    """``{"meta": ..., "cells": [...]}``; NaN is written as null."""
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in cells[list(COLUMNS)].to_dict(orient="records")
    ]
    return json.dumps({"meta": meta, "cells": records}, indent=2, default=_plain)


def from_json(text: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Inverse of :func:`to_json`: the cells table and the meta dict."""
    data = json.loads(text)
    df = pd.DataFrame(data["cells"], columns=list(COLUMNS))
    return _typed(df), data["meta"]


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df[list(COLUMNS)].copy()
    for column, kind in COLUMNS.items():
        if kind is str:
            df[column] = df[column].fillna("").astype(str)
        elif kind is float:
            df[column] = pd.to_numeric(df[column]).astype(float)
        else:
            df[column] = df[column].astype(kind)
    return df


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
