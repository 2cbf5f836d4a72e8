"""The compact dataset cache: a dataset is converted once, then read memory-mapped.

An entry is a folder ``<cache>/<dataset>-<key>/`` with ``images.npy`` (uint8 N,C,H,W),
``labels.npy`` (int64), ``split.npy`` (int8) and ``manifest.json``: the dataset, its
resolved options, the data root, identities, split counts and checksum, the sha256 of
each array file and of every source file (with its split), and the dataset's report
(excluded identities, corrupt files, ...). The key hashes the dataset name, resolved
options, data root, plugin version and the source of the dataset's module, so changing
any of them makes a new entry. Entries are written to a temporary folder and renamed
into place (atomic); readers never see half an entry. The cache lives in
``$FACEHASH_BENCH_CACHE``, else ``~/.cache/facehash-bench``. After changing the source
files under the data root (a file or a folder), the next load sees it (size and modification
time of every file, then the content hash of those that moved: :mod:`bench.data.sources`),
says so and rebuilds the entry; ``bench data prepare NAME --force`` rebuilds it by hand and
``bench data verify`` re-hashes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.api.errors import BenchError
from bench.api.registry import check_options
from bench.config.hashing import canonical_json, stable_hash
from bench.config.paths import check_writable_folder
from bench.data.faces import SPLIT_NAMES, FaceData
from bench.data.integrity import overlap_report
from bench.data.sources import DATA_ROOT_ENV, Sources, describe, sha256_file, source_root

__all__ = ["DATA_ROOT_ENV", "sha256_file"]  # re-exported: dataset plugins hash with it
log = logging.getLogger(__name__)
CACHE_ENV = "FACEHASH_BENCH_CACHE"
FORMAT = 1
ARRAYS = {"images": np.uint8, "labels": np.int64, "split": np.int8}


def cache_root() -> Path:
    """``$FACEHASH_BENCH_CACHE`` or ``~/.cache/facehash-bench``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "facehash-bench").expanduser()


@dataclass
class Request:
    """A dataset, its data root and its options with every default filled in."""

    name: str
    data_root: str | None
    options: dict[str, Any]
    plugin: str
    version: str
    code: str  # sha256 of the dataset module's source

    @property
    def key(self) -> str:
        body = {k: getattr(self, k) for k in ("name", "data_root", "options", "plugin", "version", "code")}
        return stable_hash(body)[:16]

    @property
    def path(self) -> Path:
        return cache_root() / f"{self.name}-{self.key}"


def make_request(host: Any, name: str, data_root: str | Path | None, options: dict[str, Any]) -> Request:
    """Check ``options`` against the dataset's factory and resolve its defaults."""
    entry, _ = host.datasets.resolve(name)
    root = None if data_root is None else Path(data_root).expanduser().resolve()
    check_options(host.datasets.kind, name, entry.factory, (root,), options)
    params = list(inspect.signature(entry.factory).parameters.values())[1:]
    resolved = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    resolved.update(options)
    if root is None and os.environ.get(DATA_ROOT_ENV):
        root_text = f"${DATA_ROOT_ENV}={os.environ[DATA_ROOT_ENV]}"
    else:
        root_text = None if root is None else str(root)
    try:
        code = hashlib.sha256(Path(inspect.getsourcefile(entry.factory) or "").read_bytes()).hexdigest()
    except (OSError, TypeError):
        code = ""
    return Request(name, root_text, json.loads(canonical_json(resolved)), entry.plugin, entry.version, code)


def build(host: Any, name: str, data_root: str | Path | None, options: dict[str, Any]) -> FaceData:
    """Call the dataset's factory (no cache)."""
    root = None if data_root is None else Path(data_root).expanduser()
    return host.datasets.build(name, root, **options)


def write_entry(data: FaceData, request: Request, sources: Sources | None = None) -> Path:
    """Write ``data`` as the cache entry of ``request`` (atomically), with the record of the
    ``sources`` it was built from; returns its folder."""
    final = request.path
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the entry is shared like the rest of the cache
    try:
        hashes = {}
        for name, dtype in ARRAYS.items():
            target = tmp / f"{name}.npy"
            with target.open("wb") as fh:
                np.save(fh, np.ascontiguousarray(getattr(data, name), dtype=dtype))
                fh.flush()
                os.fsync(fh.fileno())
            hashes[f"{name}.npy"] = sha256_file(target)
        meta = dict(data.meta)
        files = meta.pop("files", [])
        per_image = meta.pop("files_per_image", True) and len(files) == len(data.split)
        if per_image:
            files = [[*row, SPLIT_NAMES[int(s)]] for row, s in zip(files, data.split.tolist(), strict=True)]
        manifest = {
            "format": FORMAT, "dataset": request.name, "key": request.key, "options": request.options,
            "data_root": request.data_root, "plugin": request.plugin, "version": request.version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "shape": list(data.images.shape),
            "identities": list(data.identities), "counts": data.counts(),
            "split_checksum": data.checksum(), "arrays": hashes, "files": files,
            "files_per_image": bool(per_image), "meta": json.loads(canonical_json(meta)),
            "sources": sources.to_json() if sources is not None else None,
        }
        with (tmp / "manifest.json").open("w") as fh:
            json.dump(manifest, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        if final.exists():  # replacing (prepare --force): move the old entry aside first
            old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=final.parent))
            os.rename(final, old / "entry")
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, final)
            except OSError:  # another process finished the same entry first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"cache entry {path} has no readable manifest ({exc}); delete the folder and run bench data prepare again") from None
    if manifest.get("format") != FORMAT:
        raise BenchError(f"cache entry {path} has format {manifest.get('format')}, this version reads {FORMAT}; rebuild it with bench data prepare --force")
    return manifest


def open_entry(path: Path, *, check: bool = True) -> FaceData:
    """The entry's data, arrays memory-mapped read-only; ``check`` compares the split checksum."""
    manifest = read_manifest(path)
    arrays = {}
    for name, dtype in ARRAYS.items():
        try:
            arrays[name] = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BenchError(f"cache entry {path}: {name}.npy is unreadable ({exc}); rebuild it with bench data prepare {manifest['dataset']} --force") from None
        if arrays[name].dtype != dtype:
            raise BenchError(f"cache entry {path}: {name}.npy has dtype {arrays[name].dtype}; rebuild it with bench data prepare --force")
    meta = {**manifest["meta"], "cache": str(path)}
    data = FaceData(manifest["dataset"], arrays["images"], arrays["labels"], arrays["split"], manifest["identities"], meta=meta)
    if check and data.checksum() != manifest["split_checksum"]:
        raise BenchError(
            f"cache entry {path} is damaged (split checksum {data.checksum()} != {manifest['split_checksum']}); "
            f"rebuild it with bench data prepare {manifest['dataset']} --force"
        )
    return data


def prepare(host: Any, name: str, data_root: str | Path | None, options: dict[str, Any], *, force: bool = False) -> Path:
    """Build the dataset and write its cache entry (kept when present unless ``force``)."""
    request = make_request(host, name, data_root, options)
    if request.path.exists() and not force:
        return request.path
    return build_entry(host, request, data_root, options)


def build_entry(host: Any, request: Request, data_root: str | Path | None, options: dict[str, Any]) -> Path:
    """Build the dataset and write its entry, recording its source files first (so a change
    made while it builds shows at the next load)."""
    check_cache_writable(request)
    root = source_root(request.name, data_root)
    sources = Sources.record(root) if root is not None else None
    return write_entry(build(host, request.name, data_root, options), request, sources)


def stale_sources(path: Path, name: str, data_root: str | Path | None) -> list[str]:
    """How the entry's source files changed since it was built (empty: they did not). Moved
    modification times over unchanged content are written back to the manifest."""
    root = source_root(name, data_root)
    if root is None:
        return []
    manifest = read_manifest(path)
    if not manifest.get("sources"):
        return ["the entry records no source files (built by an older version)"]
    changes, refreshed = Sources(**manifest["sources"]).changes(root)
    if refreshed is not None:
        try:
            tmp = path / f".manifest-{os.getpid()}.json"
            tmp.write_text(json.dumps({**manifest, "sources": refreshed.to_json()}, indent=1))
            os.replace(tmp, path / "manifest.json")
        except OSError:  # a read-only cache: the content check runs again next time
            pass
    return changes


def check_cache_writable(request: Request) -> None:
    """A one-line error, before the dataset is built, when its entry cannot be written."""
    check_writable_folder(request.path.parent, "dataset cache", f"set {CACHE_ENV} to a writable folder")


def load_dataset(
    host: Any, name: str, data_root: str | Path | None, options: dict[str, Any], *, use_cache: bool = True
) -> FaceData:
    """The dataset through the cache: read the entry if present, else build, write and read it."""
    request = make_request(host, name, data_root, options)
    if not use_cache:
        return build(host, name, data_root, options)
    if not request.path.exists():
        build_entry(host, request, data_root, options)
    elif changes := stale_sources(request.path, name, data_root):
        log.warning("dataset '%s': its source files changed since the cache entry was built (%s); rebuilding %s",
                    name, describe(changes), request.path)
        build_entry(host, request, data_root, options)
    return open_entry(request.path)


def find_entries(name: str, data_root: str | Path | None = None, options: dict[str, Any] | None = None) -> list[Path]:
    """Cache entries of ``name`` whose data root and options match the given ones."""
    root = None if data_root is None else str(Path(data_root).expanduser().resolve())
    found = []
    for path in sorted(cache_root().glob(f"{name}-*")):
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("dataset") != name or (root is not None and manifest.get("data_root") != root):
            continue
        if all(manifest.get("options", {}).get(k) == v for k, v in (options or {}).items()):
            found.append(path)
    return found


def verify_entry(path: Path, data_root: str | Path | None = None) -> list[tuple[str, bool, str]]:
    """Re-check an entry: array hashes, split checksum, overlaps and, given the data root
    (or the recorded one), every source file's sha256. Returns ``(check, ok, detail)`` rows."""
    manifest = read_manifest(path)
    rows = []
    for name, expected in manifest["arrays"].items():
        target = path / name
        actual = sha256_file(target) if target.exists() else "missing"
        rows.append((f"sha256 {name}", actual == expected, actual[:16]))
    if all(ok for _, ok, _ in rows):
        data = open_entry(path, check=False)
        checksum = data.checksum()
        rows.append(("split checksum", checksum == manifest["split_checksum"], checksum))
        rows.append(("counts", data.counts() == manifest["counts"], str(data.counts())))
        overlaps = overlap_report(np.asarray(data.images), np.asarray(data.split))
        rows.append(("no identical pixels across parts", not any(overlaps.values()), str(overlaps)))
    root_text = str(data_root) if data_root is not None else manifest.get("data_root")
    if manifest["files"] and root_text and not root_text.startswith("$"):
        root = Path(root_text).expanduser()
        missing, changed = [], []
        for path_text, digest, *_ in manifest["files"]:
            source = root / path_text
            if not source.is_file():
                missing.append(path_text)
            elif sha256_file(source) != digest:
                changed.append(path_text)
        detail = f"{len(manifest['files'])} files under {root}; missing {len(missing)}, changed {len(changed)}"
        if missing or changed:
            detail += f" (first: {(missing + changed)[0]})"
        rows.append(("source files", not (missing or changed), detail))
    return rows
