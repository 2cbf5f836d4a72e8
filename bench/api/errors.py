"""The one exception type users see: a one-line message naming the problem and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A user-facing error. The CLI prints its message on one line and exits with code 2."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> BenchError:
    """Build the standard "unknown X" error listing the known names and the closest one.

    >>> str(unknown_name("method", "dcbj", ["dcbh", "lsh"]))
    "unknown method 'dcbj'; known: dcbh, lsh (did you mean 'dcbh'?)"
    """
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listing = ", ".join(known) if known else "none registered"
    return BenchError(f"unknown {kind} '{name}'; known: {listing}{hint}")
