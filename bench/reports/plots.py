"""Report plots as PNG files (matplotlib's object API with the Agg canvas; no pyplot state):
the metric vs code length with error bars, precision-recall curves per code length,
verification ROC curves per code length, and precision@K curves. Each variant keeps one colour in every plot.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Key pairs (recall, precision) an evaluation's curves.json may use for the PR curve.
# precision over non-empty Hamming balls first (an empty ball has no precision), then the
# older curves that count an empty ball as precision 0
PR_KEYS = (("pr_recall", "pr_precision_nonempty"), ("pr_recall", "pr_precision"), ("recall", "precision"),
           ("recall_curve", "precision_curve"))
PRECISION_AT = re.compile(r"^metrics\.precision_at_(\d+)$")
DPI = 110


def colours(variants: list[str]) -> dict[str, tuple]:
    """A fixed colour per variant (tab10, then tab20)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(variants) <= 10 else "tab20"]
    return {v: cmap(i % cmap.N) for i, v in enumerate(variants)}


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def metric_vs_bits(cells: pd.DataFrame, metric: str, path: Path, published: pd.DataFrame | None = None) -> Path:
    """One line per variant: mean over seeds, error bars = ±1 sample std; published as hollow markers."""
    variants = list(dict.fromkeys(cells["variant"]))
    colour = colours(variants)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for variant in variants:
        group = cells[cells["variant"] == variant].sort_values("bits")
        std = group["std"].fillna(0.0).to_numpy()
        ax.errorbar(group["bits"], group["mean"], yerr=std, marker="o", capsize=4, label=variant, color=colour[variant])
    if published is not None and len(published) and metric == "map":
        for (method, source), group in published.groupby(["method", "source"], sort=False):
            group = group.sort_values("bits")
            ax.plot(group["bits"], group["map"], linestyle="--", marker="s", markerfacecolor="none",
                    color="0.35", label=f"{method} (published: {source})")
    bits = sorted(cells["bits"].unique())
    ax.set_xticks(bits)
    ax.set_xlabel("code length (bits)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs code length (error bars: ±1 std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def pr_pair(curves: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(recall, precision) arrays from a run's ``curves.json``, or ``None`` if it has none.

    >>> pr_pair({"pr_recall": [0.1, 0.5], "pr_precision": [0.9, 0.6]})
    (array([0.1, 0.5]), array([0.9, 0.6]))
    >>> pr_pair({"other": [1]}) is None
    True
    """
    for r_key, p_key in PR_KEYS:
        if r_key in curves and p_key in curves:
            recall, precision = np.asarray(curves[r_key], float), np.asarray(curves[p_key], float)
            if recall.shape == precision.shape and recall.ndim == 1 and len(recall):
                return recall, precision
    return None


def _panels(n: int) -> tuple[Figure, np.ndarray]:
    """A figure with ``n`` panels, at most 4 per row; returns it and the flat axes."""
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.9 * cols + 0.4, 2.8 * rows + 0.4), layout="constrained")
    return fig, np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()


def _same_length(pairs: dict) -> dict:
    """The (variant, bits) entries with curves, whose runs' curves all have one length."""
    return {k: v for k, v in pairs.items() if v and len({len(p[0]) for p in v}) == 1}


def _curve_panels(bits: list[int], xlabel: str, ylabel: str) -> tuple[Figure, dict[int, Any]]:
    """One unit-square panel per code length (title, labels, limits, grid); the figure and
    each length's axes."""
    fig, axes = _panels(len(bits))
    for ax, b in zip(axes, bits, strict=False):
        ax.set_title(f"{b} bits", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[len(bits):]:
        ax.set_visible(False)
    return fig, dict(zip(bits, axes, strict=False))


def pr_curves(curves: dict[tuple[str, int], list[dict]], variants: list[str], path: Path) -> Path | None:
    """Precision-recall curves (averaged pointwise over seeds), one panel per code length.

    ``curves`` maps (variant, bits) to each seed's curves.json; ``None`` when no run has a
    PR curve.
    """
    pairs = _same_length({k: [p for p in (pr_pair(c) for c in v) if p is not None] for k, v in curves.items()})
    if not pairs:
        return None
    bits = sorted({b for _, b in pairs})
    colour = colours(variants)
    fig, axes = _curve_panels(bits, "recall", "precision")
    for b, ax in axes.items():
        for variant in variants:
            runs = pairs.get((variant, b))
            if not runs:
                continue
            recall = np.mean([r for r, _ in runs], axis=0)
            stacked = np.array([p for _, p in runs])  # NaN where every ball of a run is empty
            precision = np.array([np.nanmean(col) if not np.isnan(col).all() else np.nan for col in stacked.T])
            ax.plot(recall, precision, marker=".", markersize=3, label=variant, color=colour[variant])
            empty = [c["pr_empty_share"] for c in curves[(variant, b)] if len(c.get("pr_empty_share", [])) == len(recall)]
            if empty:  # the share of queries whose ball is empty at each radius: no precision there
                ax.plot(recall, np.mean(empty, axis=0), linestyle=":", linewidth=1, color=colour[variant])
    axes[bits[0]].legend(fontsize=7, loc="best")
    fig.suptitle("Precision-recall over Hamming radius (mean over seeds); precision over non-empty balls, "
                 "dotted: share of empty balls", fontsize=9)
    return _save(fig, path)


def roc_curves(curves: dict[tuple[str, int], list[dict]], variants: list[str], path: Path) -> Path | None:
    """Verification ROC (TAR vs FAR over integer Hamming thresholds, averaged pointwise over
    runs), one panel per code length; ``None`` when no run stored an ROC."""
    pairs = _same_length({k: [(np.asarray(c["roc_far"], float), np.asarray(c["roc_tar"], float))
                              for c in v if "roc_far" in c and "roc_tar" in c] for k, v in curves.items()})
    if not pairs:
        return None
    bits = sorted({b for _, b in pairs})
    colour = colours(variants)
    fig, axes = _curve_panels(bits, "FAR (impostor pairs accepted)", "TAR (genuine pairs accepted)")
    for b, ax in axes.items():
        for variant in variants:
            runs = pairs.get((variant, b))
            if runs:
                ax.plot(np.mean([f for f, _ in runs], axis=0), np.mean([t for _, t in runs], axis=0),
                        marker=".", markersize=3, label=variant, color=colour[variant])
        ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.8, linestyle=":")
    axes[bits[0]].legend(fontsize=7, loc="best")
    fig.suptitle("Verification ROC over Hamming thresholds (mean over runs)", fontsize=11)
    return _save(fig, path)


def precision_at_k(runs: pd.DataFrame, variants: list[str], path: Path) -> Path | None:
    """precision@K (mean over seeds) vs K, one panel per code length; ``None`` without such metrics."""
    columns = sorted((int(m.group(1)), c) for c in runs for m in [PRECISION_AT.match(c)] if m)
    if not columns:
        return None
    ks = [k for k, _ in columns]
    bits = sorted(runs["bits"].unique())
    colour = colours(variants)
    fig, axes = _panels(len(bits))
    for ax, b in zip(axes, bits, strict=False):
        for variant in variants:
            group = runs[(runs["variant"] == variant) & (runs["bits"] == b)]
            if group.empty:
                continue
            values = [group[c].mean() for _, c in columns]
            ax.plot(ks, values, marker="o", markersize=4, label=variant, color=colour[variant])
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_title(f"{b} bits", fontsize=10)
        ax.set_xlabel("K (top-K retrieved)")
        ax.set_ylabel("precision@K")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in axes[len(bits):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("Precision of the top K (mean over seeds)", fontsize=11)
    return _save(fig, path)
