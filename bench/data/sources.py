"""What a cache entry was built from: the size, modification time and sha256 of every file
under the dataset's data root (a file such as ``data.npz`` or a pickle, or a folder of
images), so a dataset regenerated at the same path is caught and rebuilt.

The check is cheap first and sure second: one ``stat`` per file; only when a file's size or
modification time differs from the record is its content hashed, and only a different
hash (or a file added or removed) counts as a change. Datasets without a data root
(generated ones, or data shipped inside a package) have no sources to watch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

DATA_ROOT_ENV = "FACEHASH_BENCH_DATA_ROOT"

Stamp = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def source_root(name: str, data_root: str | Path | None) -> Path | None:
    """The file or folder a dataset reads: ``data_root``, else ``$FACEHASH_BENCH_DATA_ROOT/<name>``
    when that exists, else ``None`` (nothing to watch)."""
    if data_root is None and os.environ.get(DATA_ROOT_ENV):
        data_root = Path(os.environ[DATA_ROOT_ENV]) / name
    if data_root is None:
        return None
    root = Path(data_root).expanduser().resolve()
    return root if root.exists() else None


def stamp(root: Path | None) -> Stamp:
    """Size and modification time of every file under ``root`` (or of ``root`` itself).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()); _ = (folder / "a.txt").write_text("hi")
    >>> {k: v[0] for k, v in stamp(folder).items()}
    {'a.txt': 2}
    """
    if root is None:
        return {}
    if root.is_file():
        st = root.stat()
        return {root.name: (st.st_size, st.st_mtime_ns)}
    found: Stamp = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            try:
                st = path.stat()
            except OSError:
                continue
            found[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


def _file(root: Path, rel: str) -> Path:
    return root if root.is_file() else root / rel


@dataclass(frozen=True)
class Sources:
    """The record kept in an entry's manifest: per file ``[size, mtime_ns, sha256]``."""

    root: str
    files: dict[str, list]

    @classmethod
    def record(cls, root: Path) -> Sources:
        """Stat and hash every source file (before the dataset is built from them)."""
        return cls(str(root), {rel: [size, mtime, sha256_file(_file(root, rel))]
                               for rel, (size, mtime) in sorted(stamp(root).items())})

    def to_json(self) -> dict:
        return {"root": self.root, "files": self.files}

    def changes(self, root: Path) -> tuple[list[str], Sources | None]:
        """What changed under ``root`` since the record: ``(descriptions, refreshed)``; the
        descriptions are empty when nothing did, and ``refreshed`` is a record with the new
        modification times when only those moved (same content), else ``None``."""
        now = stamp(root)
        old = {rel: (size, mtime) for rel, (size, mtime, _) in self.files.items()}
        if now == old:
            return [], None
        changes = [f"{rel} added" for rel in sorted(set(now) - set(old))]
        changes += [f"{rel} removed" for rel in sorted(set(old) - set(now))]
        files = dict(self.files)
        for rel in sorted(set(now) & set(old)):
            if now[rel] == old[rel]:
                continue
            digest = sha256_file(_file(root, rel))
            if digest != self.files[rel][2]:
                changes.append(f"{rel} changed (size {old[rel][0]} -> {now[rel][0]} bytes)")
            files[rel] = [*now[rel], digest]
        return changes, None if changes else Sources(self.root, files)


def describe(changes: list[str], limit: int = 3) -> str:
    """``changes`` in one short phrase.

    >>> describe(["a added", "b removed", "c changed", "d added"])
    'a added, b removed, c changed and 1 more'
    """
    more = f" and {len(changes) - limit} more" if len(changes) > limit else ""
    return ", ".join(changes[:limit]) + more
