"""The results table ``bench run`` and ``bench sweep`` print: one row per run.

The default table fits 80 columns: the headline ``map`` with its Hamming-tie bounds as
``0.655 (0.581-0.784)`` (expected value, then worst and best order inside ties), the
precision of the top K, the seconds and the status. ``--wide`` adds every other metric. A
float top line among the results adds the bytes each face costs to store (``B/face``).
Values are never cut: the method column wraps instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

TITLE = "Hamming retrieval results (queries vs {gallery})"
NO_RELEVANT_MARK = "!"  # after a map whose queries include some with no relevant gallery item
FLOAT_NOTE = ("B/face: bytes per face (codes: bits / 8; a float top line: its float32 embedding, ranked by "
              "exact cosine distance, ties = equal distances)")
WIDE_METRICS = ("map", "map_best", "map_worst", "precision_at_r", "precision_at_50", "precision_r2", "recall_r2")


def with_ties(metrics: dict[str, float], name: str = "map") -> str:
    """``name`` with its tie bounds, 3 decimals: ``expected (worst-best)``; ``-`` when absent.

    >>> with_ties({"map": 0.6551, "map_worst": 0.5812, "map_best": 0.7843})
    '0.655 (0.581-0.784)'
    >>> with_ties({"map": 0.5}), with_ties({})
    ('0.500', '-')
    """
    if name not in metrics:
        return "-"
    worst, best = metrics.get(f"{name}_worst"), metrics.get(f"{name}_best")
    if worst is None or best is None:
        return f"{metrics[name]:.3f}"
    return f"{metrics[name]:.3f} ({worst:.3f}-{best:.3f})"


def precision_column(results: Sequence[Any]) -> str | None:
    """The precision the default table shows: at R (the number of relevant items) where
    every run has it, else at the smallest K every run has.

    >>> from types import SimpleNamespace as N
    >>> precision_column([N(metrics={"precision_at_50": 1, "precision_at_5": 1}), N(metrics={"precision_at_5": 1})])
    'precision_at_5'
    """
    if results and all("precision_at_r" in r.metrics for r in results if r.metrics):
        return "precision_at_r"
    shared = None
    for r in results:
        names = {m for m in r.metrics if m.startswith("precision_at_") and m.removeprefix("precision_at_").isdigit()}
        if names:
            shared = names if shared is None else shared & names
    if not shared:
        return None
    return min(shared, key=lambda m: int(m.removeprefix("precision_at_")))


def float_rows(results: Sequence[Any]) -> bool:
    """Whether any result is a float top line (its bytes per face are not its bits / 8).

    >>> from types import SimpleNamespace as N
    >>> spec = N(bits=12)
    >>> float_rows([N(spec=spec, metrics={"bytes_per_face": 1.5})]), float_rows([N(spec=spec, metrics={"bytes_per_face": 512.0})])
    (False, True)
    """
    return any(r.metrics.get("bytes_per_face", r.spec.bits / 8) != r.spec.bits / 8 for r in results)


def bytes_cell(value: float | None) -> str:
    """Bytes per face: ``1.5``, ``6``, ``512``; ``-`` when absent.

    >>> bytes_cell(1.5), bytes_cell(512.0), bytes_cell(None)
    ('1.5', '512', '-')
    """
    return "-" if value is None else f"{value:g}"


def results_table(results: Sequence[Any], wide: bool = False) -> Table:
    """The table of ``results`` (:class:`bench.running.spec.RunResult`); ``wide`` shows
    every metric of :data:`WIDE_METRICS` (4 decimals) instead of the compact columns."""
    open_set = any(r.spec.protocol.split == "open-set" for r in results)
    gallery = "gallery of the retrieval identities" if open_set else "gallery = train split"
    splits = open_set or any(r.spec.protocol.split_seed for r in results)  # a split column when splits vary
    table = Table(title=TITLE.format(gallery=gallery), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("method", overflow="fold", ratio=1)
    for column in ("bits", "seed", *(["split"] if splits else [])):
        table.add_column(column, justify="right", no_wrap=True)
    if wide:
        shown = list(WIDE_METRICS)
        headers = shown
    else:
        top = precision_column(results)
        table.caption = ("map (ties): expected map over a random order inside Hamming ties (worst-best "
                         "order); " + ("p@R: precision of the top R, R = the query's relevant items; "
                                       if top == "precision_at_r" else "") + "--wide: every metric")
        shown = ["map", *([top] if top else [])]
        headers = ["map (ties)", *([f"p@{top.removeprefix('precision_at_').upper()}"] if top else [])]
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    floats = float_rows(results)
    if floats:  # a float top line stands beside the codes: show what each costs to store
        table.add_column("B/face", justify="right", no_wrap=True)
        table.caption = (table.caption or "") + ("; " if table.caption else "") + FLOAT_NOTE
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for r in results:
        if wide:
            values = [f"{r.metrics[m]:.4f}" if m in r.metrics else "-" for m in shown]
        else:
            values = [with_ties(r.metrics), *(f"{r.metrics[m]:.3f}" if m in r.metrics else "-" for m in shown[1:])]
        if without_relevant(r.metrics) and values[0] != "-":
            values[0] += NO_RELEVANT_MARK
        seconds = f"{r.seconds:.1f}" if r.seconds else "-"
        label = escape(r.spec.label)
        if r.collapsed:
            label += f"\n[bold red]collapsed: {escape(r.collapsed)}[/]"
        split = [str(r.spec.protocol.split_seed)] if splits else []
        size = [bytes_cell(r.metrics.get("bytes_per_face"))] if floats else []
        table.add_row(label, str(r.spec.bits), str(r.spec.seed), *split, *values, *size, seconds, r.status)
    if any(without_relevant(r.metrics) for r in results):
        note = (f"{NO_RELEVANT_MARK}: some queries have no relevant gallery item; they score 0 "
                "(queries_without_relevant)")
        table.caption = f"{table.caption}\n{note}" if table.caption else note
    return table


def without_relevant(metrics: dict[str, float]) -> int:
    """Queries of a run whose identity has no gallery item (each scores 0 in ``map``).

    >>> without_relevant({"queries_without_relevant": 3.0}), without_relevant({})
    (3, 0)
    """
    return int(metrics.get("queries_without_relevant", 0) or 0)
