"""The statuses of a run: MLflow's run statuses, plus ``SKIPPED``, which only a result has."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status; each member is the string MLflow stores (``RunStatus.FINISHED == "FINISHED"``)."""

    FINISHED = "FINISHED"
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    SKIPPED = "SKIPPED"  # a result only: the run had finished before, or another process runs it; never stored


STORED = tuple(s for s in RunStatus if s is not RunStatus.SKIPPED)  # what the store may hold
ACTIVE = (RunStatus.RUNNING, RunStatus.SCHEDULED)  # a run some process is (or was) executing
