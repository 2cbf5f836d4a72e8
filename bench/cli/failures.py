"""Failures of the machine rather than of the input, turned into one line at the command's
edge: a damaged SQLite store ("database disk image is malformed") and a full disk
("database or disk is full", ENOSPC). Anything else keeps its traceback."""

from __future__ import annotations

import errno
from pathlib import Path

DAMAGED = ("database disk image is malformed", "file is not a database")
FULL = ("database or disk is full", "No space left on device")


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def one_line(exc: BaseException, stores: list[Path]) -> str | None:
    """The one line for ``exc`` when the store or the disk failed (``stores``: the SQLite
    stores the command opened, the last one first named), else ``None``.

    >>> one_line(RuntimeError("(sqlite3.DatabaseError) database disk image is malformed"), [Path("/s/mlflow.db")])
    "the store /s/mlflow.db is damaged (database disk image is malformed); restore it from a backup (check it with sqlite3 /s/mlflow.db 'PRAGMA integrity_check') or pass another --tracking-uri"
    >>> one_line(ValueError("x"), [])
    """
    texts = [str(e) for e in causes(exc)]
    store = stores[-1] if stores else None
    where = store or Path.cwd()
    for text in texts:
        if any(d in text for d in DAMAGED):
            detail = next(d for d in DAMAGED if d in text)
            return (f"the store {where} is damaged ({detail}); restore it from a backup (check it with "
                    f"sqlite3 {where} 'PRAGMA integrity_check') or pass another --tracking-uri")
    full = [e for e in causes(exc) if isinstance(e, OSError) and e.errno == errno.ENOSPC]
    if full or any(f in text for f in FULL for text in texts):
        path = Path(full[0].filename) if full and full[0].filename else (store.parent if store else where)
        return (f"no space left on {path}; free space there and rerun the command (finished runs are kept; "
                "unfinished ones continue)")
    return None
