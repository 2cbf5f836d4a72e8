"""The HTML report: one self-contained file (inline CSS, PNGs embedded as base64) with the
leaderboard, notes, published rows, plots, galleries, per-row reproduce commands, the
protocol and the provenance of the runs.
"""

from __future__ import annotations

import base64
import time
from html import escape

import pandas as pd

from bench.reports.build import Report, ReportImage
from bench.reports.code_versions import MARK
from bench.reports.export import published_rows
from bench.reports.table import MARKERS, pivot

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;
 margin:0;background:#f6f8fa;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:1.55rem;margin:0 0 4px}h2{font-size:1.15rem;margin:30px 0 10px;border-bottom:1px solid #d0d7de;
 padding-bottom:4px}.sub{color:#57606a;font-size:.9rem;margin:0 0 14px}
table{border-collapse:collapse;font-size:.88rem;margin:6px 0}th,td{border:1px solid #d0d7de;padding:5px 9px}
th{background:#f0f3f6;text-align:center}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.label{font-weight:600;white-space:nowrap}tr.published td{color:#57606a;font-style:italic;background:#fafbfc}
td.best{background:#dafbe1}td.best .v{font-weight:700}.ci,.n{display:block;color:#57606a;font-size:.76rem}
.better{color:#1a7f37;font-weight:700}.mixed{color:#9a6700;font-weight:700}.worse{color:#cf222e;font-weight:700}.ref{color:#0969da;font-size:.75rem}
ul.legend{font-size:.82rem;color:#57606a;margin:6px 0 0;padding-left:18px}
.notes{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 14px;font-size:.85rem}
.notes ul{margin:4px 0;padding-left:18px}figure{margin:10px 0 18px}figcaption{font-size:.85rem;color:#57606a}
img{max-width:100%;height:auto;border:1px solid #eaeef2}.plots{display:flex;flex-wrap:wrap;gap:0 22px}
.plots figure{max-width:100%}
.gallery{display:grid;grid-template-columns:repeat(auto-fit,minmax(540px,1fr));gap:4px 14px}
.gallery figure{margin:4px 0}code{font-size:.8rem;background:#f6f8fa;padding:2px 5px;
 border-radius:4px;word-break:break-all}table.kv td:first-child{font-weight:600;white-space:nowrap;background:#fafbfc}
"""


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    run = report.runset
    metric = report.options.metric
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>facehash-bench leaderboard: {escape(run.dataset)} ({escape(run.fingerprint)})</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>Leaderboard: {escape(run.dataset)}, {escape(metric)}"
        f"{' (released configurations)' if run.standard == 'released' else ''}</h1>",
        f'<p class="sub">protocol fingerprint <code>{escape(run.fingerprint)}</code> · '
        f"standard {escape(run.standard)} · "
        f"{len(run.runs)} finished run(s) · generated {escape(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>",
        _notes(report),
        '<h2 id="table">Results</h2>', _table(report),
        '<ul class="legend">' + "".join(f"<li>{escape(line)}</li>" for line in report.legend) + "</ul>",
    ]
    if len(report.verification):
        parts += ['<h2 id="verification">Verification and identification</h2>',
                  '<p class="sub">Means over each row\'s runs. rank1/rank5: CMC, expected under a random order '
                  "inside Hamming ties; tar_at_far_X: TAR at the largest integer distance threshold whose FAR "
                  "&le; X, pairs at the threshold accepted; eer and roc_auc on the ROC polyline; bytes_per_face: "
                  "bits / 8 for a code, the float32 embedding's size for a float top line (ranked by cosine "
                  "distance, thresholds at its distinct distances).</p>",
                  _frame(report.verification)]
    if len(report.cost):
        parts += ['<h2 id="cost">Retrieval cost</h2>',
                  '<p class="sub">Measured by <code>bench cost RUN</code> on each run\'s codes (means over the runs '
                  "measured): bytes of one code, heap an exhaustive index holds per face, single-query time "
                  "(median, 99th percentile) at 10^6 faces exhaustive (flat) and with multi-index hashing (MIH, "
                  "its recall@k against exhaustive), and the float top line (d=128 IndexFlatIP).</p>",
                  _frame(report.cost)]
    if report.gaps is not None and len(report.gaps):
        parts += ['<h2 id="published">Published numbers and the reproduction gap</h2>', _gaps(report.gaps)]
    parts += ['<h2 id="reproduce">How to reproduce each row</h2>', _kv(
        {v: f"<code>{escape(report.reproduce.get(v, '(config.yaml missing)'))}</code>"
         for v in dict.fromkeys(report.cells["variant"])}, raw=True)]
    if report.plots:
        parts += ['<h2 id="plots">Plots</h2><div class="plots">'] + [_figure(i) for i in report.plots] + ["</div>"]
    if report.galleries:
        parts += ['<h2 id="galleries">Retrieval galleries</h2>',
                  '<p class="sub">Fixed queries (evenly spaced over the query set, the same for every run); '
                  "each row shows the query and its 10 nearest gallery images by Hamming distance "
                  "(ties in gallery order), green frame = same identity, red = another; d = distance.</p>",
                  '<div class="gallery">'] + [_figure(i, caption=False) for i in report.galleries] + ["</div>"]
    tagged = {v: t for v, t in report.variant_tags.items() if t}
    if tagged:
        parts += ['<h2 id="variants">Method tags (options and stated deviations)</h2>', _kv(
            {v: "<br>".join(f"<b>{escape(k)}</b>: {escape(val)}" for k, val in sorted(t.items()))
             for v, t in tagged.items()}, raw=True)]
    parts += ['<h2 id="protocol">Protocol</h2>', _kv({k: str(v) for k, v in report.protocol.items()})]
    parts += ['<h2 id="provenance">Provenance</h2>', _kv({k: ", ".join(v) for k, v in report.provenance.items()})]
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _notes(report: Report) -> str:
    found = report.runset.found
    items = []
    if len(found) > 1:
        listing = ", ".join(f"{r.fingerprint} ({r.dataset}, {r.runs} runs)" for r in found.itertuples())
        items.append(f"Protocol fingerprints found: {listing}. Only {report.runset.fingerprint} is reported; "
                     "runs under different protocols are never pooled (choose with --protocol).")
    items += report.notes
    if not items:
        return ""
    return '<div class="notes"><b>Notes</b><ul>' + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul></div>"


def _table(report: Report) -> str:
    variants, bits, grid = pivot(report.cells)
    published = published_rows(report.published)
    all_bits = sorted(set(bits) | {b for _, values in published for b in values})
    head = "<tr><th>method</th>" + "".join(f"<th>{b} bits</th>" for b in all_bits) + "</tr>"
    rows = []
    for variant in variants:
        tds = [f'<td class="label">{escape(variant)}</td>']
        for b in all_bits:
            cell = grid.get((variant, b))
            tds.append(_cell(cell) if cell is not None else '<td class="num">–</td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    for label, values in published:
        tds = [f'<td class="label">{escape(label)}</td>'] + [f'<td class="num">{values.get(b, "–")}</td>' for b in all_bits]
        rows.append('<tr class="published">' + "".join(tds) + "</tr>")
    return f'<table id="leaderboard"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _cell(cell: pd.Series) -> str:
    std = "" if pd.isna(cell["std"]) else f" ± {cell['std']:.4f}"  # one seed: no std
    marker = MARKERS.get(cell["vs_reference"], "")
    kind = {"better": "better", "worse": "worse", "reference": "ref"}.get(cell["vs_reference"], "")
    mark = f' <span class="{kind}">{escape(marker)}</span>' if marker else ""
    if cell["mixed_code"]:
        mark += f' <span class="mixed" title="runs of this row come from different code">{MARK}</span>'
    lines = [f'<span class="v">{cell["mean"]:.4f}{std}</span>{mark}']
    if not pd.isna(cell["ci_low"]):
        lines.append(f'<span class="ci">95% CI {cell["ci_low"]:.3f}–{cell["ci_high"]:.3f}</span>')
    if not pd.isna(cell["tie_best"]):
        lines.append(f'<span class="ci">ties {cell["tie_worst"]:.3f}–{cell["tie_best"]:.3f}</span>')
    p = "" if pd.isna(cell["p_holm"]) else f" · p={cell['p_holm']:.2g}"
    splits = f", split seeds {escape(str(cell['splits']))}" if cell.get("n_splits", 1) > 1 else ""
    lines.append(f'<span class="n">n={cell["n_seeds"]} (seeds {escape(cell["seeds"])}{splits}){p}</span>')
    classes = "num best" if cell["best"] else "num"
    return f'<td class="{classes}">{"".join(lines)}</td>'


def _frame(frame: pd.DataFrame) -> str:
    """A plain table of ``frame``: text columns as labels, floats with 4 decimals."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        tds = [f'<td class="num">{v:.4f}</td>' if isinstance(v, float) else f'<td class="label">{escape(str(v))}</td>'
               for v in row]
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _gaps(gaps: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in ("method", "bits", "published", "ours: map", "ours: map_legacy", "gap (map − published)", "seeds", "source"))
    rows = []
    for g in gaps.itertuples():
        values = [escape(f"{g.method} → {g.variant}"), str(g.bits), _num(g.published), _num(g.map), _num(g.map_legacy),
                  _num(g.gap, signed=True), str(g.n_seeds), escape(g.source)]
        rows.append("<tr>" + "".join(f'<td class="num">{v}</td>' for v in values) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _num(value, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _figure(image: ReportImage, caption: bool = True) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    text = f"<figcaption>{escape(image.title)}</figcaption>" if caption else ""
    return f'<figure><img alt="{escape(image.title)}" src="data:image/png;base64,{data}">{text}</figure>'



def _kv(items: dict[str, str], raw: bool = False) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{v if raw else escape(v)}</td></tr>" for k, v in items.items())
    return f'<table class="kv">{rows}</table>'
