"""Face data in the harness: uint8 images, identity labels and a protocol split.

Every dataset plugin returns a :class:`FaceData`. The split assigns each image to
``train``, ``val`` (model selection only), ``query`` or ``gallery``. Closed-set data has no
``gallery`` part: its training images are the retrieval gallery. Open-set data
(:mod:`bench.data.openset`) keeps training and retrieval identities apart: ``train`` and
``val`` hold the training identities, ``gallery`` and ``query`` the others.
Its checksums are computed once and kept on the object; assigning new ``images``, ``labels``,
``split`` or ``identities`` forgets them (the arrays themselves are treated as read-only).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.api.errors import BenchError

TRAIN, VAL, QUERY, GALLERY = 0, 1, 2, 3
SPLIT_NAMES = {TRAIN: "train", VAL: "val", QUERY: "query", GALLERY: "gallery"}
CHECKSUMMED = frozenset({"images", "labels", "split", "identities"})  # the fields the checksums cover
#: ``meta`` key: ``{name: value}`` that every run on the data carries as ``facehash.data.<name>`` tags
#: (a dataset's preprocessing that changes what is measured, e.g. how many faces went unaligned).
RUN_TAGS = "run_tags"


@dataclass
class FaceData:
    """Images ``(N, C, H, W)`` uint8, labels ``(N,)`` int64 in ``0..C-1``, split ``(N,)`` int8."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    identities: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    _checksum: str | None = field(default=None, init=False, repr=False, compare=False)
    _pool_checksum: str | None = field(default=None, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in CHECKSUMMED:  # new pixels, labels, split or names: the kept checksums no longer hold
            self.__dict__["_checksum"] = self.__dict__["_pool_checksum"] = None
        super().__setattr__(name, value)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise BenchError(
                f"dataset '{self.name}': images must be uint8 (N, C, H, W), got "
                f"{self.images.dtype} {self.images.shape}; convert them in the dataset plugin"
            )
        n = len(self.images)
        if self.labels.shape != (n,) or self.split.shape != (n,):
            raise BenchError(
                f"dataset '{self.name}': {n} images but labels {self.labels.shape} and split "
                f"{self.split.shape}; give one label and one split entry per image"
            )
        self.labels = self.labels.astype(np.int64, copy=False)
        self.split = self.split.astype(np.int8, copy=False)
        for part in (TRAIN, QUERY):
            if not np.any(self.split == part):
                raise BenchError(
                    f"dataset '{self.name}': the {SPLIT_NAMES[part]} split is empty; "
                    "check the protocol's per-identity counts"
                )

    @property
    def num_classes(self) -> int:
        return len(self.identities)

    @property
    def train_classes(self) -> int:
        """Classes an identity classifier needs: training labels are ``0..train_classes-1``
        (every identity in closed-set data, the training identities in open-set data)."""
        return int(self.labels[self.split == TRAIN].max()) + 1

    @property
    def gallery_part(self) -> int:
        """The part that is the retrieval gallery: ``GALLERY`` in open-set data, else ``TRAIN``."""
        return GALLERY if np.any(self.split == GALLERY) else TRAIN

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def part(self, which: int) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one split part."""
        mask = self.split == which
        return self.images[mask], self.labels[mask]

    def counts(self) -> dict[str, int]:
        """Images per split part (``gallery`` only when the data has one).

        >>> FaceData("d", np.zeros((2, 1, 2, 2), np.uint8), np.array([0, 1]), np.array([0, 2]), ["a", "b"]).counts()
        {'train': 1, 'val': 0, 'query': 1}
        """
        parts = [k for k in SPLIT_NAMES if k != GALLERY or np.any(self.split == GALLERY)]
        return {SPLIT_NAMES[k]: int(np.sum(self.split == k)) for k in parts}

    def pool_checksum(self) -> str:
        """A stable hash of the pixels and each image's identity name, not of the split or the
        label numbering (hex sha256, first 16 chars): equal for every split of the same images.

        >>> x = np.zeros((2, 1, 2, 2), np.uint8)
        >>> a = FaceData("d", x, np.array([0, 1]), np.array([0, 2]), ["a", "b"])
        >>> b = FaceData("d", x, np.array([1, 0]), np.array([2, 0]), ["b", "a"])
        >>> a.pool_checksum() == b.pool_checksum(), a.checksum() == b.checksum()
        (True, False)
        """
        if self._pool_checksum is None:
            h = hashlib.sha256()
            h.update(repr(self.images.shape).encode())
            h.update(np.ascontiguousarray(self.images).tobytes())
            names = np.asarray(self.identities, dtype=object)[np.asarray(self.labels)]
            h.update("\n".join(str(n) for n in names).encode())
            self._pool_checksum = h.hexdigest()[:16]
        return self._pool_checksum

    def checksum(self) -> str:
        """A stable hash of the pixels, labels and split (hex sha256, first 16 chars),
        computed on first use and kept until ``images``, ``labels`` or ``split`` is replaced.

        >>> data = FaceData("d", np.zeros((2, 1, 2, 2), np.uint8), np.array([0, 1]), np.array([0, 2]), ["a", "b"])
        >>> first = data.checksum()
        >>> data.images = np.ones((2, 1, 2, 2), np.uint8)
        >>> data.checksum() == first, data.checksum() == split_checksum(data.images, data.labels, data.split)
        (False, True)
        """
        if self._checksum is None:
            self._checksum = split_checksum(self.images, self.labels, self.split)
        return self._checksum


def split_checksum(images: np.ndarray, labels: np.ndarray, split: np.ndarray) -> str:
    """sha256 over shapes, pixels, labels and split assignment.

    >>> x = np.zeros((2, 1, 2, 2), np.uint8)
    >>> a = split_checksum(x, np.array([0, 1]), np.array([0, 2]))
    >>> a == split_checksum(x, np.array([0, 1]), np.array([2, 0]))
    False
    """
    h = hashlib.sha256()
    h.update(repr(images.shape).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(split, dtype=np.int8).tobytes())
    return h.hexdigest()[:16]


def per_identity_split(
    labels: np.ndarray, *, val: int, query: int, seed: int, min_train: int = 1
) -> np.ndarray:
    """Assign ``query`` then ``val`` images of each identity in a seeded random order; the
    rest go to ``train``. An identity left with fewer than ``min_train`` training images is
    an error (datasets report and exclude such identities by rule before splitting).

    >>> s = per_identity_split(np.repeat([0, 1], 10), val=1, query=2, seed=0)
    >>> [int(np.sum(s[:10] == k)) for k in (TRAIN, VAL, QUERY)]
    [7, 1, 2]
    """
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), TRAIN, dtype=np.int8)
    for ident in np.unique(labels):
        idx = np.flatnonzero(labels == ident)
        if len(idx) < query + val + min_train:
            raise BenchError(
                f"identity {ident} has {len(idx)} images but the split needs at least "
                f"{query + val + min_train}; lower the per-identity counts"
            )
        idx = idx[rng.permutation(len(idx))]
        split[idx[:query]] = QUERY
        split[idx[query : query + val]] = VAL
    return split


class ValidationOnly(FaceData):
    """A dataset without its queries, for tuning: the training and validation images only.

    The query images (and any other part a split defines beyond train and val) are not in it
    at all, not merely masked, and asking for the query part is an error, so a tuning trial
    cannot score itself on the queries even by mistake. The identities stay those of the full
    dataset (a classifier has the same classes).
    """

    def __post_init__(self) -> None:
        if not np.isin(self.split, (TRAIN, VAL)).all():
            raise BenchError(f"dataset '{self.name}': a validation-only view holds training and validation images only")
        for part in (TRAIN, VAL):
            if not np.any(np.asarray(self.split) == part):
                raise BenchError(
                    f"dataset '{self.name}': tuning scores trials on the {SPLIT_NAMES[part]} split, "
                    "which is empty; give the dataset validation images (e.g. --set dataset.val=1)"
                )
        self.labels = self.labels.astype(np.int64, copy=False)
        self.split = self.split.astype(np.int8, copy=False)

    def part(self, which: int) -> tuple[np.ndarray, np.ndarray]:
        if which == QUERY:
            raise BenchError("tuning trials never see the queries; they are scored on the validation split")
        return super().part(which)


def without_queries(data: FaceData) -> ValidationOnly:
    """``data`` with only its training and validation images (see :class:`ValidationOnly`).

    >>> full = FaceData("d", np.zeros((3, 1, 2, 2), np.uint8), np.array([0, 0, 0]), np.array([0, 1, 2]), ["a"])
    >>> view = without_queries(full)
    >>> view.counts(), view.num_classes
    ({'train': 1, 'val': 1, 'query': 0}, 1)
    >>> view.part(QUERY)
    Traceback (most recent call last):
    ...
    bench.api.errors.BenchError: tuning trials never see the queries; they are scored on the validation split
    """
    keep = np.isin(data.split, (TRAIN, VAL))
    return ValidationOnly(f"{data.name} (without queries)", data.images[keep], data.labels[keep],
                          data.split[keep], list(data.identities), dict(data.meta))
