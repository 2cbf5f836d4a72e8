"""Training batches drawn by index from a uint8 tensor kept on the training device.

Samplers: ``sequential`` (file order, no shuffling), ``shuffle`` (a seeded permutation
each epoch) and ``balanced`` (each batch draws ``ids_per_batch`` identities and an equal
number of images of each, as pairwise losses need positives in every batch).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class BatchSource:
    """Seeded batches of ``(images uint8, labels)`` on ``device``."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        sampler: str = "shuffle",
        ids_per_batch: int = 10,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(self.device)
        self.batch_size = min(batch_size, len(labels))
        self.sampler = sampler
        self.ids_per_batch = ids_per_batch
        self.generator = torch.Generator().manual_seed(seed)
        self._by_identity = [
            torch.from_numpy(np.flatnonzero(labels == c)) for c in np.unique(labels)
        ]

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.labels) // self.batch_size)

    def _index_batches(self) -> Iterator[torch.Tensor]:
        n = len(self.labels)
        if self.sampler == "sequential":
            order = torch.arange(n)
        elif self.sampler == "shuffle":
            order = torch.randperm(n, generator=self.generator)
        else:
            yield from self._balanced()
            return
        yield from order.split(self.batch_size)

    def _balanced(self) -> Iterator[torch.Tensor]:
        n_ids = min(self.ids_per_batch, len(self._by_identity))
        per_id = max(2, self.batch_size // n_ids)
        for _ in range(len(self)):
            chosen = torch.randperm(len(self._by_identity), generator=self.generator)[:n_ids]
            parts = []
            for c in chosen.tolist():
                pool = self._by_identity[c]
                pick = torch.randint(len(pool), (per_id,), generator=self.generator)
                if len(pool) >= per_id:  # without replacement when the identity has enough
                    pick = torch.randperm(len(pool), generator=self.generator)[:per_id]
                parts.append(pool[pick])
            yield torch.cat(parts)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self._index_batches():
            idx = idx.to(self.device)
            yield self.images.index_select(0, idx), self.labels.index_select(0, idx)
