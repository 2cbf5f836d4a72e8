"""From read images to a protocol: the too-few-images rule, the per-identity split, the
overlap check, and the :class:`~bench.data.faces.FaceData` with its report in ``meta``.

``meta`` keys every loader fills the same way: ``source``, ``excluded_identities``
(``{identity: reason}``), ``corrupt`` (``[[path, reason], ...]``), ``overlap_dropped``
and, for file-based data, ``files`` (``[[path, sha256], ...]``, one per image, in image
order) which the cache manifest keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.api.errors import BenchError
from bench.data.faces import FaceData, per_identity_split
from bench.data.integrity import enforce_no_overlap, exclude_small_identities


@dataclass
class ImagePool:
    """Images with identity labels (indices into ``identities``) and, for files, their
    relative paths and sha256 hashes, one per image."""

    images: np.ndarray
    labels: np.ndarray
    identities: list[str]
    sources: list[str] | None = None
    file_hashes: list[str] | None = None

    def take(self, keep: np.ndarray) -> ImagePool:
        """The images where ``keep`` is true; identities left without images are removed
        and labels renumbered ``0..C-1`` in the original identity order."""
        keep = np.asarray(keep, dtype=bool)
        labels = self.labels[keep]
        used = np.unique(labels)
        remap = np.full(len(self.identities), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))

        def pick(items: list[str] | None) -> list[str] | None:
            return None if items is None else [s for s, k in zip(items, keep, strict=True) if k]

        return ImagePool(
            self.images[keep], remap[labels], [self.identities[i] for i in used],
            pick(self.sources), pick(self.file_hashes),
        )


def split_by_identity(
    dataset: str, pool: ImagePool, *, val: int, query: int, split_seed: int, min_images: int | None
) -> tuple[ImagePool, np.ndarray, dict[str, str]]:
    """Exclude identities under ``min_images`` (default ``query + val + 1``), then give each
    remaining identity ``query`` and ``val`` images in a seeded order and the rest to train."""
    if val < 0 or query < 1:
        raise BenchError(f"dataset '{dataset}': need query >= 1 and val >= 0 images per identity (got query={query}, val={val})")
    needed = query + val + 1
    min_images = needed if min_images is None else min_images
    if min_images < needed:
        raise BenchError(
            f"dataset '{dataset}': min_images={min_images} is below query + val + 1 = {needed}; "
            "raise min_images or lower query/val"
        )
    keep, excluded = exclude_small_identities(dataset, pool.labels, pool.identities, min_images)
    pool = pool.take(keep)
    if not pool.identities:
        raise BenchError(f"dataset '{dataset}': no identity has the {min_images} images the protocol needs; lower query/val")
    return pool, per_identity_split(pool.labels, val=val, query=query, seed=split_seed), excluded


def finish(
    dataset: str,
    pool: ImagePool,
    split: np.ndarray,
    *,
    overlap: str = "refuse",
    meta: dict[str, Any] | None = None,
) -> FaceData:
    """Check that no image is shared between split parts and build the :class:`FaceData`."""
    keep, dropped = enforce_no_overlap(
        dataset, pool.images, split, file_hashes=pool.file_hashes, sources=pool.sources, policy=overlap
    )
    if not keep.all():
        pool, split = pool.take(keep), split[keep]
    report = {"excluded_identities": {}, "corrupt": [], "overlap_dropped": dropped, **(meta or {})}
    if pool.sources is not None and pool.file_hashes is not None:
        report["files"] = [[s, h] for s, h in zip(pool.sources, pool.file_hashes, strict=True)]
    return FaceData(dataset, pool.images, pool.labels, split, pool.identities, meta=report)
