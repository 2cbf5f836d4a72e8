"""Folders the harness will write to, checked before anything is written."""

from __future__ import annotations

import errno
import os
import shutil
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


LOW_SPACE_BYTES = 1 << 20  # below this a failed write is taken for a full disk


def out_of_space(exc: BaseException, folder: Path) -> bool:
    """Whether the write that raised ``exc`` into ``folder`` failed for lack of space: ENOSPC,
    or any failure (torch's "enforce fail at inline_container.cc") while the disk is full.

    >>> out_of_space(OSError(28, "No space left on device"), Path("."))
    True
    >>> out_of_space(ValueError("bad"), Path("/"))  # a disk with room
    False
    """
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if "database or disk is full" in str(exc):
        return True
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        return shutil.disk_usage(existing).free < LOW_SPACE_BYTES
    except OSError:
        return False


def no_space(folder: Path, fix: str) -> BenchError:
    """The one line for a full disk under ``folder``."""
    return BenchError(f"no space left on {Path(folder).absolute()}; {fix}")
