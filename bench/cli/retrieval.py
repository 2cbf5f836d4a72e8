"""The retrieval commands of a finished run: ``bench encode`` (codes of new images),
``bench export`` (the encoder as ONNX or TorchScript), ``bench index build`` (a faiss binary
index of the gallery, stored with the run) and ``bench search`` (k nearest or a radius, by
image or by the run's query split)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from bench.cli.app import app, console

if TYPE_CHECKING:
    from bench.retrieval.runs import RunHandle
    from bench.retrieval.search import QueryResult

index_app = typer.Typer(help="Build faiss binary indexes of a run's gallery codes.", no_args_is_help=True)
app.add_typer(index_app, name="index")

RunArg = Annotated[str, typer.Argument(help="A finished child run of `bench run`: its id, name (dcbh-48b-s0) or a unique id prefix.")]
AlignedOpt = Annotated[bool, typer.Option("--aligned", help="The files are face chips already aligned as the run's dataset aligns them (needed for a dataset built with align=dlib).")]
UriOpt = Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db).")]
KindOpt = Annotated[str, typer.Option(help="Index kind: flat (exact), hash, multihash, ivf or hnsw.")]


@contextmanager
def opened(ref: str, tracking_uri: str | None) -> Iterator[RunHandle]:
    """The run ``ref`` names, its artifacts downloaded into a temporary folder."""
    from bench.retrieval.runs import open_run
    from bench.tracking.client import check_tracking_uri, resolve_tracking_uri
    from bench.tracking.reading import StoreReader

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        yield open_run(StoreReader(uri), ref, Path(tmp))


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command("encode")
def encode_command(
    run: RunArg,
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, PGM, ...).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Save the codes to this .npz (codes: int8 {-1,+1}, packed: uint8 bytes, files) instead of printing them.")] = None,
    aligned: AlignedOpt = False,
    tracking_uri: UriOpt = None,
) -> None:
    """Encode image files with a finished deep run's stored model (its input pipeline included)."""
    import numpy as np

    from bench.evaluation.codes import pack_codes

    with opened(run, tracking_uri) as handle:
        codes = handle.encode_files(list(images), aligned)
    if output is not None:
        partial = output.with_name(output.name + ".partial.npz")
        np.savez(partial, codes=codes, packed=pack_codes(codes), files=np.asarray([str(p) for p in images]))
        partial.replace(output)
        say(f"{len(codes)} code(s) of {codes.shape[1]} bits written to {output}")
        return
    for path, packed in zip(images, pack_codes(codes), strict=True):
        say(f"{packed.tobytes().hex()}  {path}")


@app.command("export")
def export_command(
    run: RunArg,
    format: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: <run name>.onnx or .pt here).")] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Write a finished deep run's encoder (uint8 images in, int8 codes out) as ONNX or TorchScript."""
    from bench.api.errors import BenchError
    from bench.retrieval.export import SUFFIX, ExportFormat, export_encoder

    try:
        fmt = ExportFormat(format)
    except ValueError:
        raise BenchError(f"--format {format}: use onnx or torchscript") from None
    with opened(run, tracking_uri) as handle:
        target = output or Path(f"{handle.name}{SUFFIX[fmt]}")
        written = export_encoder(handle, fmt, target)
    say(f"wrote {written[0]} ({fmt.value}) and its input pipeline {written[1]}")


@index_app.command("build")
def index_build_command(
    run: RunArg,
    kind: KindOpt = "flat",
    b: Annotated[int | None, typer.Option(help="hash, multihash: bits per hash key (default: about log2 of the gallery size).")] = None,
    nhash: Annotated[int | None, typer.Option(help="multihash: number of tables (default: as many as fit).")] = None,
    nflip: Annotated[int | None, typer.Option(help="hash, multihash: bits flipped per key when probing (default 1).")] = None,
    nlist: Annotated[int | None, typer.Option(help="ivf: number of lists (default: sqrt of the gallery size).")] = None,
    nprobe: Annotated[int | None, typer.Option(help="ivf: lists probed (default: an eighth).")] = None,
    m: Annotated[int | None, typer.Option("--m", help="hnsw: links per node (default 16).")] = None,
    ef_search: Annotated[int | None, typer.Option(help="hnsw: search breadth (default 64).")] = None,
    recall_k: Annotated[int, typer.Option(help="Measure the recall of the true k nearest for this k.", min=1)] = 10,
    tracking_uri: UriOpt = None,
) -> None:
    """Build a faiss binary index of a finished run's gallery codes and store it with the run."""
    from bench.retrieval.index import IndexParams, index_kind
    from bench.retrieval.store import build_run_index
    from bench.tracking.client import Tracker

    chosen = index_kind(kind)
    params = IndexParams(b=b, nhash=nhash, nflip=nflip, nlist=nlist, nprobe=nprobe, m=m, ef_search=ef_search)
    with opened(run, tracking_uri) as handle:
        card = build_run_index(handle, Tracker(handle.reader.uri), chosen, params, recall_k)
    settings = ", ".join(f"{k}={v}" for k, v in card["params"].items() if v is not None) or "none"
    say(f"{card['kind']} index of {card['gallery_size']} codes of {card['bits']} bits (faiss d={card['faiss_d']}; "
        f"padding: {card['padding']}), settings: {settings}; built in {card['build_seconds'] * 1000:.1f} ms")
    what = "exact" if card["exact"] else "approximate"
    say(f"{what}: recall of the true {card['recall_k']} nearest on the run's {card['queries']} queries: "
        f"{card['recall']:.4f}; stored as artifact index/{card['kind']} of run {handle.name}")


@app.command("search")
def search_command(
    run: RunArg,
    image: Annotated[list[Path] | None, typer.Option("--image", help="Query image file (repeatable).")] = None,
    query_split: Annotated[bool, typer.Option("--query-split", help="Search with the run's own query codes.")] = False,
    kind: KindOpt = "flat",
    k: Annotated[int, typer.Option("--k", help="Neighbours per query.")] = 10,
    radius: Annotated[int | None, typer.Option(help="Every gallery image within this Hamming distance instead of the k nearest.")] = None,
    index_run: Annotated[str | None, typer.Option(help="Search the index stored with this run instead (same code length).")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many queries.", min=1)] = 20,
    aligned: AlignedOpt = False,
    tracking_uri: UriOpt = None,
) -> None:
    """Search a finished run's gallery index by image or with its query split."""
    from bench.retrieval.index import EXACT_KINDS, check_range, index_kind
    from bench.retrieval.search import (
        check_lengths,
        query_codes,
        recall_against_exhaustive,
        run_search,
    )
    from bench.retrieval.store import load_run_index

    chosen = index_kind(kind)
    with opened(run, tracking_uri) as handle:
        codes, names, labels, encode_seconds = query_codes(handle, list(image or []), query_split, aligned)
        if radius is not None:
            check_range(chosen, radius, codes.shape[1])
        with opened(index_run or run, tracking_uri) as owner:
            stored = load_run_index(owner, chosen)
            check_lengths(stored, codes.shape[1], handle.name, owner.name)
            results, search_seconds = run_search(owner, stored, codes, names, labels, k=k, radius=radius)
            recall = None if radius is not None or chosen in EXACT_KINDS else \
                recall_against_exhaustive(owner.codes.gallery, stored, codes, k)
    title = f"{chosen.value} index of {owner.name}: " + (f"within radius {radius}" if radius is not None else f"top {k}")
    console.print(results_table(title, results[:limit]))
    encoding = "the run's stored query codes, no encoding" if query_split else f"encoding {encode_seconds * 1000:.1f} ms"
    say(f"{len(results)} quer{'y' if len(results) == 1 else 'ies'}: {encoding}, searching {search_seconds * 1000:.2f} ms"
        + (f" (first {limit} shown)" if len(results) > limit else ""))
    if recall is not None:
        say(f"{chosen.value} is approximate: recall of the true {k} nearest against exhaustive search {recall:.4f}")


def results_table(title: str, results: list[QueryResult]) -> Table:
    """One row per match: the query (and its identity, when known), rank, distance, image id,
    identity and whether it is the query's identity."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=escape(title))
    for column in ("query", "rank", "distance", "image id", "identity", "same"):
        table.add_column(column, justify="right" if column in ("rank", "distance", "image id") else "left")
    for result in results:
        query = escape(result.query) + (f" ({escape(result.identity)})" if result.identity else "")
        if not result.matches:
            table.add_row(query, "-", "-", "-", "nothing found", "-")
        for match in result.matches:
            same = "-" if match.same is None else ("yes" if match.same else "no")
            table.add_row(query if match.rank == 1 else "", str(match.rank), str(match.distance),
                          str(match.image_id), escape(match.identity), same)
    return table


@app.command("serve")
def serve_command(
    run: RunArg,
    kind: KindOpt = "flat",
    k: Annotated[int, typer.Option("--k", help="Neighbours shown per search.", min=1)] = 10,
    host: Annotated[str, typer.Option(help="Address to bind (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8765,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, in MiB.", min=0.01)] = 4.0,
    tracking_uri: UriOpt = None,
) -> None:
    """Serve a search page for a finished deep run: upload a face or pick a query, see its nearest gallery faces."""
    from werkzeug.serving import make_server

    from bench.cli.server import LOCAL_HOSTS
    from bench.retrieval.gallery import run_images
    from bench.retrieval.index import index_kind
    from bench.retrieval.page import SearchPage, create_app
    from bench.retrieval.store import index_for

    chosen = index_kind(kind)
    with opened(run, tracking_uri) as handle:
        handle.model  # noqa: B018 - a run without a model fails here, before anything listens
        page = SearchPage(handle, index_for(handle, chosen), run_images(handle), k)
        server = make_server(host, port, create_app(page, int(max_upload_mb * 2**20)), threaded=True)
        if host not in LOCAL_HOSTS:
            say(f"warning: the search page listens on {host}, reachable from other machines; it has no authentication")
        stored = "stored" if page.index.card.get("stored", True) else "built now, not stored"
        say(f"search page of {handle.name} ({chosen.value} index, {stored}) at http://{host}:{server.server_port}/ "
            "(Ctrl-C stops it)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            say("stopped")
        finally:
            server.server_close()
