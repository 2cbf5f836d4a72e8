"""Integrity rules every dataset obeys, so that no protocol is silently wrong.

* No image may sit in two split parts (train, val, query) as the same file or with
  identical pixels: :func:`enforce_no_overlap` refuses the protocol (or, by the named
  option ``overlap=drop``, drops the val/query copies and records them).
* Corrupt or unreadable images are counted and listed: :func:`handle_corrupt` refuses
  (``on_corrupt=refuse``) or skips them with a logged count (``on_corrupt=skip``).
* Identities with too few images for the protocol are reported and excluded by rule:
  :func:`exclude_small_identities`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from bench.api.errors import BenchError
from bench.data.faces import QUERY, SPLIT_NAMES, TRAIN, VAL

log = logging.getLogger("bench.data")

ON_CORRUPT = ("skip", "refuse")
ON_OVERLAP = ("refuse", "drop")
SHOWN = 3  # how many offending items a message lists


def check_choice(dataset: str, option: str, value: str, choices: Sequence[str]) -> None:
    """One-line error for an option outside its named choices.

    >>> check_choice("folder", "on_corrupt", "skip", ON_CORRUPT)
    >>> check_choice("folder", "on_corrupt", "ignore", ON_CORRUPT)
    Traceback (most recent call last):
    bench.api.errors.BenchError: dataset 'folder': on_corrupt='ignore' is not one of skip, refuse; use e.g. --set dataset.on_corrupt=skip
    """
    if value not in choices:
        raise BenchError(
            f"dataset '{dataset}': {option}={value!r} is not one of {', '.join(choices)}; "
            f"use e.g. --set dataset.{option}={choices[0]}"
        )


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else "")


def handle_corrupt(dataset: str, corrupt: Sequence[tuple[str, str]], policy: str) -> None:
    """Refuse or log the unreadable files ``(path, reason)`` of ``dataset``."""
    check_choice(dataset, "on_corrupt", policy, ON_CORRUPT)
    if not corrupt:
        return
    listing = _listing([f"{path} ({reason})" for path, reason in corrupt])
    if policy == "refuse":
        raise BenchError(
            f"dataset '{dataset}': {len(corrupt)} corrupt or unreadable image(s): {listing}; "
            "repair or remove them, or skip them with --set dataset.on_corrupt=skip"
        )
    log.warning("dataset '%s': skipped %d corrupt image(s): %s", dataset, len(corrupt), listing)


def exclude_small_identities(
    dataset: str, labels: np.ndarray, identities: Sequence[str], min_images: int
) -> tuple[np.ndarray, dict[str, str]]:
    """Mask of images to keep and ``{identity: reason}`` for identities under ``min_images``.

    >>> keep, excluded = exclude_small_identities("x", np.array([0, 0, 1]), ["a", "b"], 2)
    >>> keep.tolist(), excluded
    ([True, True, False], {'b': '1 image(s), the protocol needs 2'})
    """
    counts = np.bincount(labels, minlength=len(identities))
    small = np.flatnonzero(counts < min_images)
    excluded = {identities[i]: f"{counts[i]} image(s), the protocol needs {min_images}" for i in small}
    if excluded:
        log.warning(
            "dataset '%s': excluded %d identit(y/ies) with fewer than %d images: %s",
            dataset, len(excluded), min_images, _listing(list(excluded)),
        )
    return ~np.isin(labels, small), excluded


def pixel_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image; images with identical pixels share one id (the groups are
    those of a 128-bit BLAKE2 digest of each image's bytes).

    >>> x = np.zeros((3, 1, 2, 2), np.uint8); x[1] = 7
    >>> g = pixel_groups(x); bool(g[0] == g[2] != g[1])
    True
    """
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    keys = np.array([hashlib.blake2b(row, digest_size=16).digest() for row in flat], dtype="S16")
    return np.unique(keys, return_inverse=True)[1].reshape(-1)


def find_overlaps(split: np.ndarray, groups: np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``: images of one group in different parts, ``i`` the group's first
    image in the earliest part (train < val < query) and ``j`` a copy in a later part.

    >>> find_overlaps(np.array([0, 2, 2, 1]), np.array([5, 5, 6, 6]))
    [(0, 1), (3, 2)]
    """
    order = np.lexsort((np.arange(len(groups)), split, groups))
    g = np.asarray(groups)[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], len(g)]
    pairs = []
    for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
        members = order[start:end]
        first = members[0]
        pairs.extend((int(first), int(j)) for j in members[1:] if split[j] != split[first])
    return sorted(pairs)


def enforce_no_overlap(
    dataset: str,
    images: np.ndarray,
    split: np.ndarray,
    *,
    file_hashes: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    policy: str = "refuse",
) -> tuple[np.ndarray, list[str]]:
    """Refuse (or, with ``policy='drop'``, drop the later copies of) images shared between
    split parts. Returns the keep mask and a description of every dropped copy."""
    check_choice(dataset, "overlap", policy, ON_OVERLAP)
    pairs: dict[int, tuple[int, str]] = {}
    checks = [("identical pixels", pixel_groups(images))]
    if file_hashes is not None:
        checks.insert(0, ("identical file", np.unique(np.asarray(file_hashes), return_inverse=True)[1]))
    for kind, groups in checks:
        for i, j in find_overlaps(split, groups):
            pairs.setdefault(j, (i, kind))
    keep = np.ones(len(split), dtype=bool)
    if not pairs:
        return keep, []

    def name(k: int) -> str:
        return sources[k] if sources is not None else f"image {k}"

    described = [
        f"{SPLIT_NAMES[int(split[i])]}/{SPLIT_NAMES[int(split[j])]} {kind}: {name(i)} = {name(j)}"
        for j, (i, kind) in sorted(pairs.items())
    ]
    if policy == "refuse":
        raise BenchError(
            f"dataset '{dataset}': {len(pairs)} image(s) shared between split parts "
            f"({_listing(described)}); remove the duplicates, or drop the val/query copies "
            "with --set dataset.overlap=drop"
        )
    keep[list(pairs)] = False
    log.warning("dataset '%s': dropped %d val/query image(s) that duplicate another part: %s",
                dataset, len(pairs), _listing(described))
    return keep, described


def overlap_report(images: np.ndarray, split: np.ndarray) -> dict[str, int]:
    """Number of images of each later part whose pixels repeat an earlier part's image.

    >>> x = np.zeros((3, 1, 1, 1), np.uint8); x[1] = 1
    >>> overlap_report(x, np.array([0, 1, 2]))
    {'train/val': 0, 'train/query': 1, 'val/query': 0}
    """
    pairs = find_overlaps(split, pixel_groups(images))
    out = {f"{SPLIT_NAMES[a]}/{SPLIT_NAMES[b]}": 0 for a, b in ((TRAIN, VAL), (TRAIN, QUERY), (VAL, QUERY))}
    for i, j in pairs:
        out[f"{SPLIT_NAMES[int(split[i])]}/{SPLIT_NAMES[int(split[j])]}"] += 1
    return out
