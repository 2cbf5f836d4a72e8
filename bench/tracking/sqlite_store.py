"""The local SQLite store file: checked before use, its schema created under an inter-process
file lock, and that lock lent to run claims (:mod:`bench.tracking.ownership`).

MLflow creates and migrates a new SQLite store's schema on first use without a lock; two
processes doing it at once leave ``_alembic_tmp_*`` tables behind, after which every call
fails with "table _alembic_tmp_... already exists". Every MLflow client of the harness is
made by :func:`mlflow_client`, which, holding ``<db>.lock`` (:mod:`filelock`), refuses a
half-migrated store with the repair and lets MLflow create the schema; MLflow keeps the
store per process, so later clients of the same URI reuse it without the lock.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any

from filelock import FileLock

from bench.api.errors import BenchError

SQLITE_MAGIC = b"SQLite format 3\x00"
LEFTOVER_PREFIX = "_alembic_tmp_"
MLFLOW_TABLES = frozenset({"experiments", "runs"})  # what makes a SQLite file an MLflow store
OPTUNA_TABLES = frozenset({"studies", "trials"})  # ... an Optuna storage
OPENED: list[Path] = []  # the SQLite stores this process opened (named when one turns out damaged)


def is_memory_uri(uri: str) -> bool:
    """Whether ``uri`` names an in-memory SQLite database (stored nowhere).

    >>> [is_memory_uri(u) for u in ("sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:////tmp/m.db")]
    [True, True, True, False]
    """
    if not uri.startswith("sqlite:"):
        return False
    path = uri[len("sqlite:"):]
    return path in ("", "//", "///") or ":memory:" in path or "mode=memory" in path


def check_database_file(uri: str, db: Path, what: str | None = None) -> None:
    """A one-line error when ``db`` is a folder or a file that is not a SQLite database
    (an empty file is a new database); reads the file's first bytes only. ``what`` names
    the option (default: the tracking URI)."""
    what = what or f"tracking URI {uri}"
    option = "--tracking-uri" if what.startswith("tracking URI") else what.split()[0]
    if db.is_dir():
        raise BenchError(f"{what}: {db} is a folder; name a database file, e.g. sqlite:///{db / 'mlflow.db'}")
    if db.is_file() and db.stat().st_size:
        with db.open("rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise BenchError(f"{what}: {db} is not a SQLite database; "
                                 f"pass another {option} (the file is left as it is)")


def table_names(what: str, db: Path) -> list[str]:
    """The tables of the SQLite file ``db`` (read only; none for a missing or empty file); a
    damaged file is a one-line error that names it."""
    if not db.is_file() or not db.stat().st_size:
        return []
    try:
        connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BenchError(damaged(what, db, str(exc))) from None
    return sorted(name for (name,) in rows)


def damaged(what: str, db: Path, detail: str) -> str:
    """The one line for a damaged SQLite file."""
    return (f"{what}: {db} is damaged ({detail}); restore it from a backup (check it with "
            f"sqlite3 {db} 'PRAGMA integrity_check'), or pass another one")


def check_foreign(what: str, db: Path, ours: frozenset[str], kind: str, *, write: bool = True) -> None:
    """Refuse a SQLite file that holds another program's tables (it is left byte for byte as it
    is); with ``write=False`` also a missing or empty one (a read-only command creates nothing)."""
    tables = table_names(what, db)
    migrating = any(name.startswith(LEFTOVER_PREFIX) for name in tables)  # a half-migrated store: repaired, not refused
    if tables and not ours & set(tables) and not migrating:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise BenchError(f"{what}: {db} is a SQLite database of another program (tables: {shown}), not an "
                         f"{kind}; it is left as it is: pass another one")
    if not tables and not write:
        raise BenchError(f"{what}: no {kind} at {db} (nothing to read); pass the one `bench run` wrote")


def leftover_tables(db: Path) -> list[str]:
    """The ``_alembic_tmp_*`` tables an interrupted schema migration left in ``db`` (read only)."""
    return [name for name in table_names("tracking store", db) if name.startswith(LEFTOVER_PREFIX)]


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or ``None`` for other schemes.

    >>> str(sqlite_path("sqlite:////tmp/x.db")), sqlite_path("http://h:5000")
    ('/tmp/x.db', None)
    """
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


@functools.cache
def store_lock(db: Path) -> FileLock:
    """The inter-process lock of the store ``db``: the file ``<db>.lock`` beside it (reentrant
    in one process)."""
    return FileLock(str(db) + ".lock", is_singleton=True)


def mlflow_client(uri: str, *, write: bool = True) -> Any:
    """An ``MlflowClient`` for ``uri``; for a SQLite store, made while holding the store's
    lock, after checking that the store is not half-migrated (a one-line error says how to
    repair it) and is not another program's database. Only ``write`` clients create a store
    (in a new or empty file); a read-only one needs no writable folder."""
    from mlflow.tracking import MlflowClient  # heavy import, only when tracking

    db = sqlite_path(uri)
    if db is None:
        return MlflowClient(tracking_uri=uri)
    check_database_file(uri, db)
    check_foreign(f"tracking URI {uri}", db, MLFLOW_TABLES, "MLflow store", write=write)
    OPENED.append(db)
    if not write:
        return MlflowClient(tracking_uri=uri)
    try:
        lock = store_lock(db.resolve())
        lock.acquire()
    except OSError:  # a read-only folder: nothing can be created there, so there is nothing to guard
        if not db.is_file():
            raise BenchError(f"tracking URI {uri}: cannot create {db}; pass a writable --tracking-uri") from None
        return MlflowClient(tracking_uri=uri)
    try:
        leftovers = leftover_tables(db)
        if leftovers:
            raise BenchError(
                f"tracking URI {uri}: the store is half-migrated (leftover table(s) {', '.join(leftovers)}); "
                f"back up {db}, then run sqlite3 {db} 'DROP TABLE {leftovers[0]}' for each leftover table "
                f"and mlflow db upgrade {uri}")
        return MlflowClient(tracking_uri=uri)
    finally:
        lock.release()
