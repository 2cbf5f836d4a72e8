"""What each row's codes cost in a search system, beside its accuracy: the ``cost_*`` metrics
``bench cost`` logs to runs (bytes per face, heap per face and query time at 10^6 faces, the
multi-index hashing recall, the float top line) as a table and as the accuracy-cost plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bench.reports.plots import DPI, colours
from bench.reports.table import metric_means
from bench.tracking.cost_metrics import BYTES_PER_FACE, FLOAT_BYTES_PER_FACE, cost_metric

AT = 10**6  # the gallery size the leaderboard quotes
COLUMNS = {  # metric -> column title
    BYTES_PER_FACE: "B/face",
    cost_metric("flat", AT, "ram_bytes_per_face"): "RAM B/face (flat)",
    cost_metric("flat", AT, "query_ms"): "flat ms@1e6",
    cost_metric("flat", AT, "p99_ms"): "flat p99 ms@1e6",
    cost_metric("multihash", AT, "query_ms"): "MIH ms@1e6",
    cost_metric("multihash", AT, "recall"): "MIH recall@1e6",
    FLOAT_BYTES_PER_FACE: "float B/face",
    cost_metric("float-flat", AT, "query_ms"): "float ms@1e6",
}
QUERY_MS = cost_metric("flat", AT, "query_ms")
FLOAT_MS = cost_metric("float-flat", AT, "query_ms")


def cost_table(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over each (variant, bits)'s runs of ``metric`` and the cost columns; empty when
    no run has been measured with ``bench cost``.

    >>> runs = pd.DataFrame({"variant": ["a", "a"], "bits": [48, 48], "metrics.map": [0.5, 0.7],
    ...                      "metrics.cost_bytes_per_face": [6.0, 6.0], "metrics.cost_flat_1e6_query_ms": [4.0, None]})
    >>> cost_table(runs, "map").to_dict("records")
    [{'variant': 'a', 'bits': 48, 'runs': 2, 'map': 0.6, 'B/face': 6.0, 'flat ms@1e6': 4.0}]
    """
    name = f"metrics.{BYTES_PER_FACE}"
    if name not in runs or runs[name].isna().all():
        return pd.DataFrame()
    measured = runs[runs[name].notna()]
    return metric_means(measured, (metric, *COLUMNS)).rename(columns=COLUMNS)


def accuracy_cost_plot(table: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """``metric`` against bytes per face and against the exhaustive query time at 10^6 faces,
    one point per method and code length (labelled with its bits); the float top line as a
    dashed line at its cost (a dlib-float run is also a point of its own at its bytes per face).
    ``None`` when no row has the query time."""
    ms = COLUMNS[QUERY_MS]
    if table.empty or ms not in table or table[ms].isna().all():
        return None
    variants = list(dict.fromkeys(table["variant"]))
    colour = colours(variants)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, column, floats, label in ((axes[0], "B/face", "float B/face", "bytes per face (log)"),
                                      (axes[1], ms, COLUMNS[FLOAT_MS], "exhaustive query time at 10^6 faces, ms (log)")):
        for variant in variants:
            rows = table[(table["variant"] == variant) & table[column].notna()].sort_values("bits")
            ax.plot(rows[column], rows[metric], marker="o", color=colour[variant], label=variant)
            for x, y, bits in zip(rows[column], rows[metric], rows["bits"], strict=True):
                ax.annotate(f"{bits}b", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if floats in table and table[floats].notna().any():
            ax.axvline(float(table[floats].mean()), linestyle="--", color="0.35",
                       label="float top line, IndexFlatIP (cost only)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{metric} against the cost of a code (bench cost; one point per method and code length)", fontsize=10)
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path
