"""The one exception type users see: a one-line message naming the problem and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


class BenchError(Exception):
    """A user-facing error. The CLI prints its message on one line and exits with code 2."""


SIMILAR = 0.65  # difflib's similarity ratio from which a known name is offered


def _plain(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def closest(name: str, known: Iterable[str], descriptions: Mapping[str, str] | None = None) -> str | None:
    """The known name ``name`` most likely means: one whose description contains it (letters
    and digits only, any case), else the most similar name by difflib's ratio (at least
    :data:`SIMILAR`), else ``None``.

    >>> closest("youtube-faces", ["synthfaces", "ytf"], {"ytf": "raw aligned YouTube Faces frames"})
    'ytf'
    >>> closest("youtube-faces", ["synthfaces", "ytf"]), closest("synthface", ["synthfaces", "ytf"])
    (None, 'synthfaces')
    """
    known = sorted(known)
    plain = _plain(name)
    for candidate in known:
        if plain and plain in _plain((descriptions or {}).get(candidate, "")):
            return candidate
    scored = [(difflib.SequenceMatcher(None, plain, _plain(k)).ratio(), k) for k in known]
    best = max(scored, default=(0.0, None), key=lambda pair: pair[0])
    return best[1] if best[0] >= SIMILAR else None


def unknown_name(kind: str, name: str, known: Iterable[str],
                 descriptions: Mapping[str, str] | None = None) -> BenchError:
    """Build the standard "unknown X" error listing the known names and the closest one
    (:func:`closest`).

    >>> str(unknown_name("method", "dcbj", ["dcbh", "lsh"]))
    "unknown method 'dcbj'; known: dcbh, lsh (did you mean 'dcbh'?)"
    """
    known = sorted(known)
    close = closest(name, known, descriptions)
    hint = f" (did you mean '{close}'?)" if close else ""
    listing = ", ".join(known) if known else "none registered"
    return BenchError(f"unknown {kind} '{name}'; known: {listing}{hint}")
