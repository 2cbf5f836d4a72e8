"""Training batches drawn by index from the uint8 training set.

Samplers: ``sequential`` (file order, no shuffling), ``shuffle`` (a seeded permutation
each epoch) and ``balanced`` (class-balanced batches, as pairwise losses need positives
in every batch): each epoch shuffles every identity's images and cuts them into chunks
of ``per_id = batch_size // ids_per_batch``; a batch is ``ids_per_batch`` chunks of
different identities (two chunks of one identity meet only when nothing else is left at
the end of an epoch), and each identity's chunks are spread over the epoch. Every image is used exactly once per epoch and
never twice in a batch, so an identity with fewer than ``per_id`` images gives all it
has and the batch is smaller (DSH's ``HashingImageData`` layer, 10 classes x 20 images,
assumes every class has 20; repeating images would only add zero-distance pairs).

Where the images live: on a CUDA device the whole uint8 set is copied to the device once
when it fits under ``memory_cap_bytes``, and batches are gathered there by index (one index
transfer per epoch, no host round trip per batch). A larger set stays in host memory; each
batch is gathered into pinned memory and copied without blocking. On the CPU the caller's
array is used in place (no copy). Indices always come from one CPU generator, so a seed
gives the same batches on every device.

Each batch carries its samples' indices into the training set, on the device with the
images: loss parts read them from the step context (a memory of every training code).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """One training batch on the training device: uint8 ``images`` (N, C, H, W), int64
    ``labels`` (N,) and ``indices`` (N,), the samples' positions in the training set."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor


class BatchSource:
    """Seeded :class:`Batch` es on ``device``."""

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray,
        *,
        batch_size: int,
        sampler: str = "shuffle",
        ids_per_batch: int = 10,
        seed: int = 0,
        device: torch.device | str = "cpu",
        memory_cap_bytes: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        host = torch.as_tensor(images)  # shares memory with a numpy array
        labels = np.asarray(labels, dtype=np.int64)
        self.resident = (
            self.device.type == "cpu" or memory_cap_bytes is None or host.nbytes <= memory_cap_bytes
        )
        self.images = host.to(self.device) if self.resident else host.cpu()
        self.labels = torch.from_numpy(labels).to(self.device)
        self.batch_size = min(batch_size, len(labels))
        self.sampler = sampler
        self.ids_per_batch = ids_per_batch
        self.generator = torch.Generator().manual_seed(seed)
        self._pin = self.device.type == "cuda"
        if sampler == "balanced":
            self._table, self._counts = identity_table(labels)

    def __len__(self) -> int:
        """Batches per epoch."""
        counts = self._counts.numpy() if self.sampler == "balanced" else None
        return batch_count(len(self.labels), self.batch_size, self.sampler, self.ids_per_batch, counts)

    def _balanced_shape(self) -> tuple[int, int]:
        """(chunks per batch, images per chunk) of the balanced sampler."""
        n_ids = min(self.ids_per_batch, len(self._counts))
        return n_ids, max(2, self.batch_size // n_ids)

    def index_batches(self) -> list[torch.Tensor]:
        """One epoch of batches as CPU int64 index tensors, drawn from :attr:`generator`."""
        n = len(self.labels)
        if self.sampler == "sequential":
            return list(torch.arange(n).split(self.batch_size))
        if self.sampler == "shuffle":
            return list(torch.randperm(n, generator=self.generator).split(self.batch_size))
        return list(self._balanced())

    def _balanced(self) -> list[torch.Tensor]:
        """One epoch of class-balanced batches (see the module docstring)."""
        n_ids, per_id = self._balanced_shape()
        g = self.generator
        chunks, owners, keys = [], [], []
        for row, count in enumerate(self._counts.tolist()):
            parts = self._table[row, torch.randperm(count, generator=g)].split(per_id)
            chunks.extend(parts)
            owners.extend([row] * len(parts))
            jitter = torch.rand(len(parts), generator=g, dtype=torch.float64)
            keys.append((torch.arange(len(parts)) + jitter) / len(parts))  # chunk r of n at (r + u) / n
        pending = deque(torch.cat(keys).argsort(stable=True).tolist())
        batches = []
        while pending:  # the next chunks, in key order, of identities not yet in the batch
            taken, seen, skipped = [], set(), []
            while pending and len(taken) < n_ids:
                i = pending.popleft()
                (skipped if owners[i] in seen else taken).append(i)
                seen.add(owners[i])
            fill = n_ids - len(taken)  # > 0 only when nothing else is left: repeat identities
            taken, skipped = taken + skipped[:fill], skipped[max(fill, 0):]
            pending.extendleft(reversed(skipped))
            batches.append(torch.cat([chunks[i] for i in taken]))
        return batches

    def __iter__(self) -> Iterator[Batch]:
        batches = self.index_batches()
        if self.resident:
            flat = torch.cat(batches)
            if self._pin:
                flat = flat.pin_memory()
            flat = flat.to(self.device, non_blocking=True)
            for idx in flat.split([len(b) for b in batches]):
                yield Batch(self.images.index_select(0, idx), self.labels.index_select(0, idx), idx)
            return
        for idx in batches:  # host-resident set: gather into pinned memory, copy asynchronously
            buffer = torch.empty((len(idx), *self.images.shape[1:]), dtype=self.images.dtype,
                                 pin_memory=True)
            torch.index_select(self.images, 0, idx, out=buffer)
            idx = idx.pin_memory().to(self.device, non_blocking=True)
            yield Batch(buffer.to(self.device, non_blocking=True), self.labels.index_select(0, idx), idx)


def batch_count(n: int, batch_size: int, sampler: str, ids_per_batch: int, counts: np.ndarray | None) -> int:
    """Batches per epoch of ``n`` images (``counts``: images per identity, for ``balanced``).

    >>> batch_count(10, 4, "shuffle", 10, None), batch_count(10, 4, "balanced", 2, np.array([5, 5]))
    (3, 3)
    """
    batch_size = min(batch_size, n)
    if sampler == "balanced":
        n_ids = min(ids_per_batch, len(counts))
        per_id = max(2, batch_size // n_ids)
        return -(-int((-(-counts // per_id)).sum()) // n_ids)
    return -(-n // batch_size)


def batches_per_epoch(labels: np.ndarray, batch_size: int, sampler: str = "shuffle", ids_per_batch: int = 10) -> int:
    """How many batches a :class:`BatchSource` of ``labels`` draws per epoch (for progress
    reports in the coordinating process, without building one).

    >>> batches_per_epoch(np.array([0, 0, 1, 1, 1]), 2)
    3
    """
    counts = np.unique(labels, return_counts=True)[1] if sampler == "balanced" else None
    return batch_count(len(labels), batch_size, sampler, ids_per_batch, counts)


def identity_table(labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Image indices per identity as a padded (identities, max count) table, and the counts.

    >>> table, counts = identity_table(np.array([1, 0, 1, 1]))
    >>> table.tolist(), counts.tolist()
    ([[1, 0, 0], [0, 2, 3]], [1, 3])
    """
    order = np.argsort(labels, kind="stable")
    _, counts = np.unique(labels, return_counts=True)
    table = np.zeros((len(counts), max(int(counts.max()), 1)), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for row, (start, count) in enumerate(zip(starts, counts, strict=True)):
        table[row, :count] = order[start : start + count]
    return torch.from_numpy(table), torch.from_numpy(counts.astype(np.int64))
