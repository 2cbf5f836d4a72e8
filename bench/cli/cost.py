"""``bench cost RUN``: what a finished run's codes cost in a face search system, measured on
this machine (bytes per face, index build time, query latency and queries/s, recall of the
approximate indexes) at gallery sizes up to 10^7, beside a float-embedding top line; logged to
the run as ``cost_*`` metrics and a ``retrieval_cost.json`` artifact (``bench leaderboard``
shows them)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bench.api.errors import BenchError
from bench.cli.app import app, console
from bench.tracking import tags

if TYPE_CHECKING:  # numpy and faiss are imported inside the command (`bench --help` stays fast)
    from mlflow.entities import Run

    from bench.retrieval.runs import RunHandle
    from bench.retrieval.study import StudyPlan, StudyResult
    from bench.tracking.reading import StoreReader


def parse_sizes(text: str) -> tuple[int, ...]:
    """Gallery sizes from a comma list of integers or powers of ten.

    >>> parse_sizes("1e4, 100000,1e6")
    (10000, 100000, 1000000)
    """
    try:
        sizes = tuple(int(float(part)) if "e" in part.lower() else int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise BenchError(f"--sizes {text}: give a comma list of gallery sizes, e.g. 1e4,1e5,1e6") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 10**8:
        raise BenchError(f"--sizes {text}: sizes lie between 1 and 1e8 faces")
    return tuple(sorted(set(sizes)))


def parse_caps(items: list[str]) -> dict:
    """``KIND=SIZE`` caps on the largest gallery a kind is measured at."""
    from bench.retrieval.cost import FloatKind
    from bench.retrieval.index import index_kind

    caps = {}
    for item in items:
        name, _, size = item.partition("=")
        kind = FloatKind(name) if name in {k.value for k in FloatKind} else index_kind(name)
        caps[kind] = parse_sizes(size)[0] if size else 0
    return caps


@app.command("cost")
def cost_command(
    run_ids: Annotated[list[str] | None, typer.Argument(metavar="[RUN]...", help="Finished child runs of `bench run` (ids, unique names or id prefixes; see `bench runs`); none: every finished run (of --experiment).")] = None,
    experiment: Annotated[str | None, typer.Option(help="Without RUN: only the runs of this MLflow experiment.")] = None,
    sizes: Annotated[str, typer.Option(help="Gallery sizes (the run's gallery grown with distractors from its own code distribution).")] = "1e4,1e5,1e6,1e7",
    kinds: Annotated[str, typer.Option(help="Binary index kinds: flat, multihash, hash, ivf, hnsw (flat always runs: recall reference).")] = "flat,multihash,hash,ivf,hnsw",
    float_dim: Annotated[int, typer.Option(help="Code runs: dimensions of a float set modelled on the run's codes (IndexFlatIP, IndexHNSWFlat); 0: none. A float run (dlib-float) is measured on its own embeddings.", min=0)] = 128,
    cap: Annotated[list[str] | None, typer.Option(help="KIND=SIZE: measure KIND up to SIZE faces (repeatable; defaults: ivf, hnsw, float-flat 1e6, float-hnsw 1e5).")] = None,
    queries: Annotated[int, typer.Option(help="Single queries timed (the run's queries, cycled).", min=1)] = 100,
    batch: Annotated[int, typer.Option(help="Queries per timed batch.", min=1)] = 100,
    k: Annotated[int, typer.Option(help="Neighbours per query (recall@k).", min=1)] = 10,
    threads: Annotated[int, typer.Option(help="faiss threads while timing.", min=1)] = 1,
    out: Annotated[Path | None, typer.Option(help="Also write the results as JSON here (one run only).")] = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log cost_* metrics and retrieval_cost.json to the run.")] = True,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db).")] = None,
) -> None:
    """Measure what runs' codes cost in faiss indexes at growing gallery sizes; log it to each run."""
    from bench.config.paths import check_writable_folder
    from bench.retrieval.cost import CostSettings
    from bench.retrieval.index import index_kind
    from bench.retrieval.study import StudyPlan
    from bench.tracking.client import check_tracking_uri, resolve_tracking_uri
    from bench.tracking.reading import StoreReader
    from bench.tracking.status import RunStatus

    plan_sizes = parse_sizes(sizes)
    binary = tuple(dict.fromkeys(index_kind(name.strip()) for name in kinds.split(",") if name.strip()))
    plan = StudyPlan(sizes=plan_sizes, kinds=binary, float_dim=float_dim,
                     caps={**StudyPlan().caps, **parse_caps(cap or [])},
                     settings=CostSettings(k=k, queries=queries, batch=batch, threads=threads))
    if out is not None:
        check_writable_folder(out.parent, "--out folder", "pass --out FILE in a writable folder")
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    reader = StoreReader(uri)
    if run_ids:
        runs = [reader.find(ref) for ref in run_ids]
    else:
        runs = [r for r in reader.search(experiment, status=RunStatus.FINISHED) if tags.METHOD in r.data.tags]
        if not runs:
            raise BenchError(f"no finished run of `bench run` in {uri}" + (f" (experiment {experiment})" if experiment else ""))
    if out is not None and len(runs) > 1:
        raise BenchError(f"--out writes one run's results; {len(runs)} runs were named: drop --out or name one RUN")
    for run in runs:
        result = _measure_run(reader, run, plan, log)
        if out is not None:
            partial = out.with_name(out.name + ".partial")
            partial.write_text(result.to_json())
            partial.replace(out)
        print_study(result)


def _measure_run(reader: StoreReader, run: Run, plan: StudyPlan, log: bool) -> StudyResult:
    """Measure one run (and its stored encoder's speed, when it has one); log its metrics and
    its results file (rows merged into the rows an earlier `bench cost` logged, a (kind, size)
    measured again replaced)."""
    from bench.evaluation.codes import pack_codes
    from bench.retrieval.runs import open_run
    from bench.retrieval.study import RESULTS_FILE, StudyResult, merged, run_float_study, run_study
    from bench.tracking.client import Tracker

    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        handle = open_run(reader, run.info.run_id, Path(tmp) / "run")
        on_row = lambda row: console.print(_row_line(row.as_dict()), markup=False, highlight=False)  # noqa: E731
        sizes = ", ".join(f"{s:,}" for s in plan.sizes)
        if handle.is_float:  # a float top line run (dlib-float): its real embeddings, float indexes only
            emb = handle.embeddings
            console.print(f"{handle.name} ({handle.run_id}): {len(emb.gallery)} gallery and {len(emb.query)} query "
                          f"{emb.gallery.shape[1]}-D float embeddings; sizes {sizes}", markup=False, highlight=False)
            result = run_float_study(emb.gallery, emb.gallery_labels, emb.query, plan, on_row=on_row)
        else:
            codes = handle.codes
            console.print(f"{handle.name} ({handle.run_id}): {len(codes.gallery)} gallery and {len(codes.query)} query "
                          f"codes of {codes.bits} bits; sizes {sizes}", markup=False, highlight=False)
            result = run_study(pack_codes(codes.gallery), codes.gallery_labels, pack_codes(codes.query), codes.bits,
                               plan, on_row=on_row)
        result.encoding, result.encoding_note = _encoding(handle, plan)
        if not log:
            return result
        logged = result
        if RESULTS_FILE in reader.artifact_paths(handle.run_id):
            old = reader.download(handle.run_id, RESULTS_FILE, Path(tmp) / "old")
            logged = merged(StudyResult.from_json(old.read_text()), result)
        folder = Path(tmp) / "cost"
        folder.mkdir()
        (folder / RESULTS_FILE).write_text(logged.to_json())
        tracker = Tracker(reader.uri)
        tracker.log_metrics(handle.run_id, result.metrics())
        tracker.log_artifacts(handle.run_id, folder)
    return result


def _encoding(handle: RunHandle, plan: StudyPlan) -> tuple[dict[str, float] | None, str]:
    """The run's stored encoder's speed on images of its input size (torch at the plan's
    thread count), or why there is none."""
    import torch

    from bench.retrieval.cost import encoding_rate

    try:
        pipeline = handle.pipeline
    except BenchError as exc:
        return None, str(exc)
    threads = torch.get_num_threads()
    torch.set_num_threads(plan.settings.threads)
    try:
        rate = encoding_rate(handle.encode, (pipeline.channels, pipeline.size, pipeline.size), plan.settings)
    finally:
        torch.set_num_threads(threads)
    return rate, ""


def _row_line(row: dict) -> str:
    recall = "" if row["recall"] is None else f", recall {row['recall']:.3f}"
    return (f"  {row['kind']:<10} {row['size']:>10,} faces: build {row['build_s']:.2f} s, query "
            f"{row['single_ms_median']:.3f} ms (p99 {row['single_ms_p99']:.3f}), {row['qps']:,.0f} q/s{recall}")


def print_study(result: StudyResult) -> None:
    """The measured rows as one table, with the machine, memory and distractor notes."""
    m = result.machine
    what = f"{result.dim}-D float embeddings" if result.dim else f"{result.bits}-bit codes"
    table = Table(title=f"retrieval cost, {what}, k={result.k}, {result.threads} faiss thread(s) "
                        f"({m['cpu']}, {m['cores']} cores, faiss {m['faiss']})")
    for column in ("index", "faces", "B/face code", "B/face RAM", "B/face disk", "build s", "query ms",
                   "p99 ms", "wall ms", "batch ms", "q/s", "recall@k"):
        table.add_column(column, justify="left" if column == "index" else "right")
    for row in result.rows:
        table.add_row(row["kind"], f"{row['size']:,}", f"{row['code_bytes']:.0f}", f"{row['ram_bytes_per_face']:.1f}",
                      f"{row['disk_bytes_per_face']:.1f}", f"{row['build_s']:.2f}", f"{row['single_ms_median']:.3f}",
                      f"{row['single_ms_p99']:.3f}", f"{row.get('wall_ms_median', 0):.3f}", f"{row['batch_ms_median']:.2f}",
                      f"{row['qps']:,.0f}",
                      "exact" if row["recall"] is None else f"{row['recall']:.3f}")
    console.print(table)
    clock = {r.get("clock", "cpu") for r in result.rows}
    encoding = (f"encoder: {result.encoding['ms_per_image']:.1f} ms per image, {result.encoding['images_per_s']:,.0f} "
                f"images/s in batches of {result.encoding['batch']:.0f}") if result.encoding else \
        f"encoder: not measured ({result.encoding_note or 'not asked'})"
    for line in (encoding, "times (build, query: one query's median and 99th percentile, batch: one batch's median; q/s: "
                 f"batched) count {'CPU time at one thread' if clock == {'cpu'} else 'wall time'}; "
                 "wall ms: a single query's median wall time on this (shared) machine",
                 f"peak memory (max RSS of this process): {result.peak_rss_bytes / 2**20:,.0f} MiB",
                 f"distractors: {result.distractors}", f"float top line: {result.floats}",
                 *(f"skipped: {s} (lift with --cap KIND=SIZE)" for s in result.skipped)):
        console.print(f"  {line}", markup=False, highlight=False)

