"""Retry MLflow store calls while SQLite reports ``database is locked``.

MLflow sets SQLite's busy timeout (20 s), but a deferred transaction that must upgrade a
read lock to a write lock while another process writes fails at once with
``database is locked`` (SQLite cannot wait there without risking deadlock). The failed
transaction was rolled back, so calling again cannot duplicate anything. With this retry
several worker processes share one SQLite file safely; docs/scaling.md gives the
measurement.
"""

from __future__ import annotations

import random
import time
from typing import Any

LOCK_MESSAGES = ("database is locked", "database table is locked", "database is busy")


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite refusing a write because another process holds the lock.

    >>> is_lock_error(RuntimeError("(sqlite3.OperationalError) database is locked"))
    True
    >>> is_lock_error(KeyError("run"))
    False
    """
    return any(message in str(exc) for message in LOCK_MESSAGES)


def backoff(attempt: int, first: float = 0.05, cap: float = 5.0) -> float:
    """Jittered exponential delay before retry ``attempt`` (0-based), in seconds.

    >>> all(0.025 <= backoff(0) <= 0.075 for _ in range(100)), backoff(20) <= 7.5
    (True, True)
    """
    return min(cap, first * 2**attempt) * (0.5 + random.random())


class RetryingClient:
    """Wraps an ``MlflowClient``: every method call is retried on lock errors.

    ``retries`` counts the retries made (a measure of contention).
    """

    def __init__(self, client: Any, attempts: int = 15) -> None:
        self._client = client
        self._attempts = attempts
        self.retries = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(self._attempts):
                try:
                    return target(*args, **kwargs)
                except Exception as exc:
                    if not is_lock_error(exc) or attempt == self._attempts - 1:
                        raise
                    self.retries += 1
                    time.sleep(backoff(attempt))
            raise AssertionError("unreachable")  # pragma: no cover

        return call
