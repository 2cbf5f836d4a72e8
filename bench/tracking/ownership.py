"""One owner per run: the process that trains a run claims it first, and keeps its claim
alive with a heartbeat, so a second process never trains a run the first is training.

The owner is ``host:pid:token`` (tag ``facehash.owner``; the token tells apart two
processes that reuse one pid) and its heartbeat the time of its last sign of life (tag
``facehash.heartbeat``, Unix seconds, refreshed every :data:`HEARTBEAT_SECONDS` by
:class:`Heartbeat`). An owner is alive while its heartbeat is younger than
:data:`STALE_SECONDS` and, on this host, its process exists; a run whose owner died is
free to take over. Claims are taken atomically under :func:`claim_lock`: the SQLite
store's own file lock, else (a tracking server) a lock file in the output folder, which
serialises the processes of one machine; processes on other machines sharing a server
are told apart by the heartbeat alone.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from bench.tracking import tags as T
from bench.tracking.client import sqlite_path
from bench.tracking.sqlite_store import store_lock
from bench.tracking.status import ACTIVE

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0


@dataclass(frozen=True)
class Owner:
    """Who holds a run: host name, process id and a token unique to the process.

    >>> Owner.parse("h:12:abc"), Owner.parse("nonsense"), str(Owner("h", 12, "abc"))
    (Owner(host='h', pid=12, token='abc'), None, 'h:12:abc')
    """

    host: str
    pid: int
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        parts = (text or "").rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])


@functools.cache
def _owner_of(pid: int) -> Owner:
    return Owner(socket.gethostname(), pid, uuid.uuid4().hex[:12])


def this_owner() -> Owner:
    """The owner this process claims runs as (a forked child gets its own)."""
    return _owner_of(os.getpid())


def pid_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host.

    >>> pid_exists(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def owner_alive(run_tags: dict[str, str], now: float | None = None) -> bool:
    """Whether the owner recorded in ``run_tags`` still holds the run: a fresh heartbeat and,
    on this host, a live process. A run without an owner has none alive.

    >>> me = str(this_owner())
    >>> owner_alive({T.OWNER: me, T.HEARTBEAT: str(time.time())}), owner_alive({T.OWNER: me, T.HEARTBEAT: "0"})
    (True, False)
    >>> owner_alive({T.OWNER: f"{socket.gethostname()}:999999999:x", T.HEARTBEAT: str(time.time())})
    False
    """
    owner = Owner.parse(run_tags.get(T.OWNER))
    if owner is None:
        return False
    try:
        beat = float(run_tags.get(T.HEARTBEAT, "0"))
    except ValueError:
        return False
    if (now if now is not None else time.time()) - beat > STALE_SECONDS:
        return False
    return owner.host != socket.gethostname() or pid_exists(owner.pid)


def held_elsewhere(run: Any) -> str | None:
    """The owner of an MLflow ``run`` that another live process is training, else ``None``."""
    run_tags = run.data.tags
    if run.info.status not in ACTIVE or run_tags.get(T.OWNER) == str(this_owner()):
        return None
    return run_tags[T.OWNER] if owner_alive(run_tags) else None


def claim_tags() -> dict[str, str]:
    """The tags that claim a run for this process."""
    return {T.OWNER: str(this_owner()), T.HEARTBEAT: f"{time.time():.3f}"}


def claim_lock(uri: str, output_dir: Path) -> FileLock:
    """The lock under which runs of the store ``uri`` are claimed (see the module docstring)."""
    db = sqlite_path(uri)
    if db is not None:
        return store_lock(db.resolve())
    output_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(output_dir / ".claims.lock"), is_singleton=True)


class Heartbeat:
    """Refreshes the heartbeat of the runs this process holds, from a daemon thread."""

    def __init__(self, tracker: Any, interval: float = HEARTBEAT_SECONDS) -> None:
        self.tracker = tracker
        self.interval = interval
        self.held: set[str] = set()
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread = threading.Thread(target=self._beat, name="facehash-heartbeat", daemon=True)

    def hold(self, run_id: str) -> None:
        with self._mutex:
            self.held.add(run_id)
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def release(self, run_id: str) -> None:
        with self._mutex:
            self.held.discard(run_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._mutex:
                held = sorted(self.held)
            for run_id in held:
                try:
                    self.tracker.set_tags(run_id, {T.HEARTBEAT: f"{time.time():.3f}"})
                except Exception:  # noqa: BLE001, S112 - the store is busy or gone; the next beat retries
                    continue
