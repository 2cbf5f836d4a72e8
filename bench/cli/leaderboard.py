"""``bench leaderboard``: compare finished runs of one protocol as a table (console,
Markdown, CSV, JSON) or a self-contained HTML report with plots and galleries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bench.api.errors import BenchError
from bench.cli.app import app, console, err_console

if TYPE_CHECKING:  # bench.reports (pandas, matplotlib, torch) is imported inside the command
    from bench.reports.build import Report

FORMATS = ("table", "md", "csv", "json", "html")


@app.command("leaderboard")
def leaderboard_command(
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment to read.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Read runs of this dataset from every experiment.")] = None,
    metric: Annotated[str, typer.Option(help="Metric to rank by (map, map_legacy, precision_at_50, ...).")] = "map",
    format_: Annotated[str, typer.Option("--format", help="table, md, csv, json or html.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout (html default: leaderboard-<fingerprint>.html).")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")] = None,
    protocol: Annotated[str | None, typer.Option(help="Protocol fingerprint (or a unique prefix) to report (default: the most recent).")] = None,
    reference: Annotated[str | None, typer.Option(help="Test every method against this one (paired, same queries).")] = None,
    published: Annotated[Path | None, typer.Option(help="YAML list of published rows: method, dataset, bits, map, source.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.", min=100)] = 2000,
    gallery_queries: Annotated[int, typer.Option(help="Queries per retrieval gallery (html or --images; 0: none).", min=0)] = 4,
    images: Annotated[Path | None, typer.Option(help="Also write the plots and galleries as PNG files in this folder.")] = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Also log the plots (and the report) as artifacts of the parent runs; without it the store is only read.")] = False,
    tuned: Annotated[bool, typer.Option("--tuned", help="Default vs tuned (bench tune) configurations side by side, with the tuning budget (table, md, csv or json).")] = False,
) -> None:
    """Rank methods by a metric under one protocol: mean ± std over seeds, 95% intervals, tests."""
    from bench.config.paths import check_writable_folder
    from bench.reports.build import ReportOptions, build_report, log_to_parents
    from bench.tracking.client import check_tracking_uri, resolve_tracking_uri, sqlite_path

    if format_ not in FORMATS:
        raise BenchError(f"--format {format_}: use one of {', '.join(FORMATS)}")
    if out is not None or format_ == "html":
        check_writable_folder((out or Path("x")).parent, "--out folder", "pass --out FILE in a writable folder")
    if images is not None:
        check_writable_folder(images, "--images", "pass a writable --images folder")
    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise BenchError(f"no MLflow store at {db}; run `bench run` first or pass --tracking-uri")
    check_tracking_uri(uri, write=log)  # without --log the store is only read (a read-only folder will do)
    if tuned and (format_ == "html" or images is not None):
        raise BenchError("--tuned writes a table (table, md, csv or json); drop --format html / --images")
    with_images = format_ == "html" or images is not None
    options = ReportOptions(
        metric=metric, reference=reference, published=published, resamples=bootstrap,
        plots=with_images, gallery_queries=gallery_queries if with_images else 0, image_dir=images,
    )
    report = build_report(uri, options, experiment=experiment, dataset=dataset, protocol=protocol)
    _say_fingerprints(report, requested=protocol)
    if tuned:
        _tuned(report, format_, out)
        return
    text = _render(report, format_)
    if format_ == "html" and out is None:
        out = Path(f"leaderboard-{report.runset.fingerprint}.html")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}", markup=False)
    elif format_ == "table":
        _print_table(report)
    else:
        typer.echo(text, nl=False)
    pictures = report.plots + report.galleries
    if log and pictures:
        extra = {f"leaderboard-{report.runset.fingerprint}.html": text} if format_ == "html" else {}
        folder = log_to_parents(uri, report.runset.parent_ids, pictures, extra)
        err_console.print(f"logged {len(pictures)} image(s) to parent run(s) {', '.join(report.runset.parent_ids)} "
                          f"under '{folder}/'", markup=False)


def standard_title(standard: str) -> str:
    """The standard as a report title names it; released runs are marked as such.

    >>> standard_title("released")
    "RELEASED (each method as its authors' code; never ranked beside other standards)"
    """
    if standard == "released":
        return "RELEASED (each method as its authors' code; never ranked beside other standards)"
    return standard


def _say_fingerprints(report: Report, requested: str | None) -> None:
    found = report.runset.found
    listing = "; ".join(f"{r.fingerprint} ({r.dataset}, standard {r.standard}, {r.runs} runs: {r.methods})"
                        for r in found.itertuples())
    err_console.print(f"protocol fingerprints found: {listing}", markup=False)
    how = f"--protocol {requested}" if requested else "the most recent"
    err_console.print(f"using {report.runset.fingerprint} ({how}); runs of other fingerprints are not compared",
                      markup=False)
    for note in report.notes:
        err_console.print(f"note: {note}", markup=False)


def _tuned(report: Report, format_: str, out: Path | None) -> None:
    from bench.reports.tuned import comparison_markdown, tuned_comparison

    metric = report.options.metric
    frame = tuned_comparison(report.runset.runs, report.cells, metric)
    if format_ == "table" and out is None:
        table = Table(title=f"default vs tuned {metric} on {report.runset.dataset}, protocol {report.runset.fingerprint}")
        for column in ("method", "bits", f"default {metric}", f"tuned {metric}", "delta", "trials x epochs", "study"):
            table.add_column(column, justify="left" if column in ("method", "study") else "right")
        for row in frame.itertuples():
            delta = "–" if row.delta != row.delta else f"{row.delta:+.4f}"
            table.add_row(row.method, str(row.bits), escape(row.default), escape(row.tuned), delta,
                          f"{row.trials} x {row.epochs_per_trial}", escape(row.study))
        console.print(table)
        for row in frame.itertuples():
            console.print(f"  {row.study}: {row.tuned_params}", markup=False, highlight=False)
        return
    text = {"csv": lambda: frame.to_csv(index=False), "json": lambda: frame.to_json(orient="records", indent=1) + "\n"}.get(
        format_, lambda: comparison_markdown(frame, metric))()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}", markup=False)
    else:
        typer.echo(text, nl=False)


def _render(report: Report, format_: str) -> str:
    if format_ == "html":
        from bench.reports.html import render_html

        return render_html(report)
    from bench.reports.export import cells_to_csv, to_json, to_markdown

    if format_ == "csv":
        return cells_to_csv(report.cells)
    if format_ == "json":
        return to_json(report.cells, report.meta())
    return to_markdown(report.cells, report.published, report.table_legend)


def _print_table(report: Report) -> None:
    from bench.reports.export import published_rows
    from bench.reports.table import format_cell, pivot

    variants, bits, grid = pivot(report.cells)
    table = Table(title=f"{report.options.metric} on {report.runset.dataset}, protocol {report.runset.fingerprint}, "
                        f"standard {standard_title(report.runset.standard)}")
    table.add_column("method")
    for b in bits:
        table.add_column(f"{b} bits", justify="right")
    for variant in variants:
        row = [escape(variant)]
        for b in bits:
            cell = grid.get((variant, b))
            text = "–" if cell is None else f"{escape(format_cell(cell))} n={cell['n_seeds']}"
            row.append(f"[bold green]{text}[/]" if cell is not None and cell["best"] else text)
        table.add_row(*row)
    for label, values in published_rows(report.published):
        table.add_row(f"[dim]{escape(label)}[/]", *[f"[dim]{values.get(b, '–')}[/]" for b in bits])
    console.print(table)
    for line in report.table_legend:
        console.print(f"  {line}", markup=False, highlight=False)
    if report.gaps is not None and len(report.gaps):
        console.print(report.gaps.to_string(index=False), markup=False, highlight=False)
    if len(report.verification):
        extra = Table(title="verification, identification and bytes per face (means over each row's runs; "
                            "docs/evaluation.md)")
        for column in report.verification.columns:
            extra.add_column(str(column), justify="left" if column == "variant" else "right")
        for row in report.verification.itertuples(index=False):
            extra.add_row(*(escape(str(v)) if not isinstance(v, float) else f"{v:g}" if name == "bytes_per_face"
                            else f"{v:.4f}" for name, v in zip(report.verification.columns, row, strict=True)))
        console.print(extra)
    if len(report.cost):
        extra = Table(title="retrieval cost at 10^6 faces (bench cost; docs/retrieval.md)")
        for column in report.cost.columns:
            extra.add_column(str(column), justify="left" if column == "variant" else "right")
        for row in report.cost.itertuples(index=False):
            extra.add_row(*(f"{v:.4f}" if isinstance(v, float) else escape(str(v)) for v in row))
        console.print(extra)
