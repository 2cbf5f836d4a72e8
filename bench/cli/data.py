"""``bench data prepare|verify|info|list``: convert a dataset into the compact cache once,
re-check a cache entry against its manifest, and show identities, images per split,
image size and the split checksum."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bench.api.errors import BenchError
from bench.cli.app import app, console
from bench.cli.parsing import parse_sets

if TYPE_CHECKING:  # numpy and the data layer are imported where used (`bench --help` stays fast)
    from bench.data.faces import FaceData

# The protocol's default input size, spelled here so that `bench --help` need not import the
# config; tests/test_cli_output.py checks it against ProtocolConfig().
DEFAULT_INPUT_SIZE = 32

data_app = typer.Typer(help="Prepare, verify and describe datasets (the compact cache).", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataRoot = Annotated[str | None, typer.Option(help="Where the dataset's files are (folder, or the .npz for arrays).")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Dataset option key=value (repeatable), e.g. --set identities=200.")]


def dataset_options(sets: list[str] | None) -> dict[str, Any]:
    """``--set`` items as dataset options; a leading ``dataset.`` is optional.

    >>> dataset_options(["dataset.identities=5", "val=0"])
    {'identities': 5, 'val': 0}
    """
    return {key.removeprefix("dataset."): value for key, value in parse_sets(sets or [])}


def per_identity(data: FaceData, part: int) -> str:
    import numpy as np

    counts = np.bincount(np.asarray(data.labels)[np.asarray(data.split) == part], minlength=data.num_classes)
    counts = counts[counts > 0]
    if not len(counts):
        return "-"
    return f"{counts.min()}-{counts.max()} (median {np.median(counts):g})"


def info_tables(name: str, data: FaceData, where: str, input_size: int | None = None) -> list[Table]:
    """The summary and per-split tables printed by ``bench data info`` and ``prepare``; with
    ``input_size``, the split checksum is the one ``bench run`` reports at that input size."""
    import numpy as np

    from bench.data.faces import SPLIT_NAMES

    c, h, w = data.image_shape
    meta = data.meta
    summary = Table(title=f"dataset {name}", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    checksum = ("split checksum", f"{data.checksum()} (as stored)")
    if input_size is not None:
        from bench.data.loading import at_input_size

        checksum = ("split checksum", f"{at_input_size(data, input_size).checksum()} (at {input_size} x {input_size}, "
                                      "as bench run reports it; --input-size to change)")
    rows = [
        ("identities", f"{data.num_classes:,}"),
        ("images", f"{len(data.labels):,}"),
        ("image size", f"{c} x {h} x {w} (C x H x W, uint8, as stored)"),
        checksum,
        ("source", str(meta.get("source", "-"))),
        ("excluded identities", _first(meta.get("excluded_identities") or {})),
        ("corrupt images", _first([p for p, *_ in meta.get("corrupt") or []])),
        ("overlap copies dropped", _first(meta.get("overlap_dropped") or [])),
        ("stored in", where),
    ]
    for key in ("protocol", "pixel_range", "alignment"):
        if key in meta:
            rows.insert(4, (key.replace("_", " "), str(meta[key])))
    for field, value in rows:
        summary.add_row(field, escape(value))
    parts = Table(title="images per split")
    for column in ("split", "images", "identities", "images per identity"):
        parts.add_column(column, justify="left" if column == "split" else "right")
    labels, split = np.asarray(data.labels), np.asarray(data.split)
    for code, part in SPLIT_NAMES.items():
        mask = split == code
        parts.add_row(part, f"{int(mask.sum()):,}", f"{len(np.unique(labels[mask])):,}", per_identity(data, code))
    return [summary, parts]


def _first(items: Any) -> str:
    items = list(items)
    if not items:
        return "0"
    shown = ", ".join(str(i) for i in items[:3])
    return f"{len(items)}: {shown}" + (", ..." if len(items) > 3 else "")


@data_app.command("prepare")
def prepare_command(
    name: Annotated[str, typer.Argument(help="Dataset name (see `bench plugins`).")],
    data_root: DataRoot = None,
    set_: Sets = None,
    force: Annotated[bool, typer.Option(help="Rebuild the entry even when it exists.")] = False,
) -> None:
    """Convert a dataset once into the compact cache (uint8 arrays + manifest)."""
    from bench.api.pluginhost import default_host
    from bench.data import cache as datacache

    host = default_host()
    path = datacache.prepare(host, name, data_root, dataset_options(set_), force=force)
    data = datacache.open_entry(path)
    for table in info_tables(name, data, str(path)):
        console.print(table)


@data_app.command("verify")
def verify_command(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    data_root: DataRoot = None,
    set_: Sets = None,
) -> None:
    """Re-check cache entries of NAME against their manifests (and the source files, when found)."""
    from bench.api.pluginhost import default_host
    from bench.data import cache as datacache

    host = default_host()
    host.datasets.resolve(name)  # unknown names get the standard error
    entries = datacache.find_entries(name, data_root, dataset_options(set_))
    if not entries:
        raise BenchError(f"no cache entry for dataset '{name}' with these options; run bench data prepare {name} first")
    failed = []
    for path in entries:
        table = Table(title=f"verify {path}")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for check, ok, detail in datacache.verify_entry(path, data_root):
            table.add_row(check, "[green]ok[/]" if ok else "[red]FAILED[/]", escape(detail))
            if not ok:
                failed.append(f"{path.name}: {check}")
        console.print(table)
    if failed:
        raise BenchError(f"cache verification failed ({'; '.join(failed)}); rebuild with bench data prepare {name} --force")


@data_app.command("info")
def info_command(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    data_root: DataRoot = None,
    set_: Sets = None,
    input_size: Annotated[int, typer.Option(help="The protocol's input size the split checksum is computed at (as bench run).", min=8)] = DEFAULT_INPUT_SIZE,
) -> None:
    """Identities, images per split, image size and split checksum (from the cache when prepared)."""
    from bench.api.pluginhost import default_host
    from bench.data import cache as datacache

    host = default_host()
    options = dataset_options(set_)
    request = datacache.make_request(host, name, data_root, options)
    if request.path.exists():
        data, where = datacache.open_entry(request.path), str(request.path)
    else:
        data = datacache.build(host, name, data_root, options)
        where = f"not cached (bench data prepare {name} writes {request.path})"
    for table in info_tables(name, data, where, input_size):
        console.print(table)


@data_app.command("list")
def list_command() -> None:
    """List the cache entries."""
    from bench.data import cache as datacache

    root = datacache.cache_root()
    table = Table(title=f"dataset cache {root}")
    for column in ("entry", "dataset", "images", "split checksum", "data root", "options"):
        table.add_column(column)
    for path in sorted(root.glob("*-*")) if root.is_dir() else []:
        try:
            manifest = datacache.read_manifest(path)
        except BenchError:
            continue
        table.add_row(path.name, manifest["dataset"], f"{manifest['shape'][0]:,}", manifest["split_checksum"],
                      str(manifest["data_root"]), escape(str(manifest["options"])))
    console.print(table)


__all__ = ["data_app"]
