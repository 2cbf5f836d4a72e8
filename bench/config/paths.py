"""Folders the harness will write to, checked before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

from bench.api.errors import BenchError


def check_writable_folder(folder: Path, what: str, fix: str) -> None:
    """A one-line error when ``folder`` (which need not exist yet) cannot be written: the
    nearest existing folder on its path is not a folder, or not writable; creates nothing.

    >>> check_writable_folder(Path("/proc/version/x"), "--output", "pass another --output")
    Traceback (most recent call last):
    bench.api.errors.BenchError: --output /proc/version/x cannot be created: /proc/version is not a folder; pass another --output
    """
    folder = Path(folder).expanduser().absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BenchError(f"{what} {folder} cannot be created: {existing} is not a folder; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"{what} {folder} is not writable ({existing} is read-only); {fix}")
