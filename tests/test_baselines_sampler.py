"""The ``balanced`` sampler DSH trains with: class-balanced batches without repeats."""

from __future__ import annotations

import numpy as np
import pytest

from bench.training.batching import BatchSource


def epoch(source: BatchSource) -> list[np.ndarray]:
    return [batch.labels.numpy() for batch in source]


def indices(source: BatchSource) -> list[np.ndarray]:
    return [idx.numpy() for idx in source.index_batches()]


def orl_like() -> np.ndarray:
    labels = np.repeat(np.arange(40), 7)
    return np.delete(labels, [60, 70])  # two identities with 6 images, as ORL's s8 and s9


def test_orl_like_batches_hold_ten_whole_identities():
    labels = orl_like()
    source = BatchSource(np.zeros((len(labels), 1, 2, 2), np.uint8), labels, batch_size=200,
                         sampler="balanced", ids_per_batch=10, seed=0)
    batches = epoch(source)
    assert len(batches) == len(source) == 4
    for b in batches:
        ids, counts = np.unique(b, return_counts=True)
        assert len(ids) == 10
        assert all(c == np.sum(labels == i) for i, c in zip(ids, counts, strict=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_every_image_once_per_epoch_and_identities_spread(seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(12), rng.integers(3, 45, 12))  # unequal identities
    source = BatchSource(np.zeros((len(labels), 1, 2, 2), np.uint8), labels, batch_size=40,
                         sampler="balanced", ids_per_batch=4, seed=seed)
    for _ in range(2):
        batches = indices(source)
        assert len(batches) == len(source)
        flat = np.concatenate(batches)
        assert np.array_equal(np.sort(flat), np.arange(len(labels)))  # each image exactly once
        per_batch_max = [np.bincount(labels[b]).max() for b in batches]
        assert max(per_batch_max[:-2]) <= 10  # chunks of one identity meet only at the epoch's end
        assert all(len(np.unique(labels[b])) == 4 for b in batches[:-2])


def test_balanced_is_seeded():
    labels = orl_like()
    make = lambda seed: BatchSource(np.zeros((len(labels), 1, 1, 1), np.uint8), labels, batch_size=200,  # noqa: E731
                                    sampler="balanced", seed=seed)
    a, b, c = indices(make(3)), indices(make(3)), indices(make(4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
