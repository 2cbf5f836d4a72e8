"""The input path: samplers, where the training set lives, and the batch preparation that
must equal a standard torchvision pipeline bit for bit."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from bench.api.pluginhost import default_host
from bench.data.faces import QUERY, TRAIN
from bench.data.preprocess import ChannelMeanStd, pixel_moments, prepare_batch
from bench.training.batching import BatchSource

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def faces(counts, size=4, seed=0):
    """Images whose first pixel is the image's index (mod 256), labels by ``counts``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    images = rng.integers(0, 256, (len(labels), 3, size, size), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels)) % 256
    return images, labels


def drawn(source, epochs=1):
    """Per batch: the image indices (read back from pixel 0) and the labels."""
    out = []
    for _ in range(epochs):
        for images, labels, _ in source:
            out.append((images[:, 0, 0, 0].long().tolist(), labels.tolist()))
    return out


def test_sequential_is_file_order_every_epoch():
    x, y = faces([3, 4, 5])
    batches = drawn(BatchSource(x, y, batch_size=5, sampler="sequential"), epochs=2)
    assert [b[0] for b in batches] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]] * 2
    assert all(labels == y[idx].tolist() for idx, labels in batches)


def test_shuffle_is_a_seeded_permutation_per_epoch():
    x, y = faces([10, 10, 10])
    a = drawn(BatchSource(x, y, batch_size=8, sampler="shuffle", seed=3), epochs=2)
    b = drawn(BatchSource(x, y, batch_size=8, sampler="shuffle", seed=3), epochs=2)
    c = drawn(BatchSource(x, y, batch_size=8, sampler="shuffle", seed=4), epochs=2)
    assert a == b and a != c
    first, second = sum((i for i, _ in a[:4]), []), sum((i for i, _ in a[4:]), [])
    assert sorted(first) == sorted(second) == list(range(30))  # each image once per epoch
    assert first != second and first != list(range(30))
    assert [len(i) for i, _ in a[:4]] == [8, 8, 8, 6]
    assert all(labels == y[idx].tolist() for idx, labels in a)


def test_balanced_batches_are_identity_chunks_covering_the_epoch_once():
    x, y = faces([6] * 8)
    source = BatchSource(x, y, batch_size=12, sampler="balanced", ids_per_batch=4, seed=1)
    epochs = [drawn(source) for _ in range(3)]
    for batches in epochs:
        assert len(batches) == len(source)
        assert sorted(sum((idx for idx, _ in batches), [])) == list(range(48))  # each image once
        for idx, labels in batches:
            assert labels == y[idx].tolist()
            ids, per = np.unique(labels, return_counts=True)
            assert len(ids) == 4 and set(per) == {3}  # 4 identities x 12 // 4 images
    assert epochs[0] != epochs[1]
    again = BatchSource(x, y, batch_size=12, sampler="balanced", ids_per_batch=4, seed=1)
    assert drawn(again) == epochs[0]


def test_balanced_never_repeats_an_image_and_small_identities_give_what_they_have():
    x, y = faces([1, 2, 7, 9, 5])
    source = BatchSource(x, y, batch_size=6, sampler="balanced", ids_per_batch=2, seed=2)
    batches = drawn(source)
    assert sorted(sum((idx for idx, _ in batches), [])) == list(range(len(y)))
    for idx, _labels in batches:
        assert len(set(idx)) == len(idx) <= 6


@pytest.mark.parametrize("sampler", ["sequential", "shuffle", "balanced"])
def test_each_batch_carries_its_samples_positions_in_the_training_set(sampler):
    x, y = faces([9, 12, 7, 10])
    source = BatchSource(x, y, batch_size=8, sampler=sampler, ids_per_batch=2, seed=7)
    for _ in range(2):
        seen = []
        for images, labels, indices in source:
            assert indices.dtype == torch.int64
            assert indices.tolist() == images[:, 0, 0, 0].long().tolist()  # pixel 0 is the index
            assert torch.equal(labels, torch.from_numpy(y)[indices])
            seen += indices.tolist()
        assert sorted(seen) == list(range(len(y)))  # every sample once per epoch


def test_cpu_source_uses_the_array_in_place():
    x, y = faces([4, 4])
    source = BatchSource(x, y, batch_size=4, device="cpu", memory_cap_bytes=0)
    assert source.resident and source.images.data_ptr() == x.__array_interface__["data"][0]


def test_pixel_moments_equal_a_float64_computation():
    x, _ = faces([50, 50], size=8, seed=2)
    mean, var = pixel_moments(x, per_channel=True)
    f = x.astype(np.float64)
    np.testing.assert_allclose(mean, f.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, f.var(axis=(0, 2, 3)), rtol=1e-12)
    m1, v1 = pixel_moments(x, per_channel=False)
    np.testing.assert_allclose([m1[0], v1[0]], [f.mean(), f.var()], rtol=1e-12)


class TorchvisionFaces(Dataset):
    """The standard pipeline: one HWC uint8 sample at a time through torchvision transforms."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images.transpose(0, 2, 3, 1).copy(), labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def test_prepared_batches_equal_torchvision_bit_for_bit():
    x, y = faces([6, 7, 5], size=8)
    split = np.zeros(len(y), np.int8)
    normaliser = ChannelMeanStd(x, split)
    mean, std = (t.tolist() for t in normaliser.stats[TRAIN])
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    source = BatchSource(x, y, batch_size=5, sampler="shuffle", seed=0)
    loader = DataLoader(TorchvisionFaces(x, y, transform), batch_sampler=source.index_batches())
    reference = list(loader)
    source.generator.manual_seed(0)  # replay the same epoch on the harness path
    for (images, labels, _), (ref_x, ref_y) in zip(source, reference, strict=True):
        for fmt in (torch.contiguous_format, torch.channels_last):
            ours = prepare_batch(images, normaliser, memory_format=fmt)
            assert ours.dtype == torch.float32 and ours.is_contiguous(memory_format=fmt)
            assert torch.equal(ours, ref_x)
        assert torch.equal(labels, ref_y)


def test_legacy_normalisation_matches_the_released_formula():
    x, y = faces([5, 5], size=8, seed=4)
    split = np.where(np.arange(len(y)) % 3 == 0, QUERY, TRAIN).astype(np.int8)
    normaliser = default_host().normalisers.build("legacy-ddh", x, split)  # the plugin's
    for part in (TRAIN, QUERY):
        sub = x[split == part].astype(np.float64)
        expected = np.clip(0.1 * (sub - sub.mean()) / (sub.std() + 1e-5), -1, 1)
        ours = normaliser.apply(torch.from_numpy(x[split == part]), part).numpy()
        np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_flip_acts_per_sample_and_commutes_with_normalisation():
    x, y = faces([40, 40], size=6, seed=5)
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    batch = torch.from_numpy(x)
    flipped = prepare_batch(batch, normaliser, augmentation="flip", generator=torch.Generator().manual_seed(0))
    plain = normaliser.apply(batch)
    same = (flipped == plain).flatten(1).all(1)
    mirrored = (flipped == plain.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 20 < int(mirrored.sum()) < 60
    again = prepare_batch(batch, normaliser, augmentation="flip", generator=torch.Generator().manual_seed(0))
    assert torch.equal(flipped, again)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("sampler", ["sequential", "shuffle", "balanced"])
@pytest.mark.parametrize("cap", [None, 0])
def test_cuda_batches_equal_cpu_batches_resident_or_not(sampler, cap):
    x, y = faces([9, 12, 7, 10], size=8)
    kw = {"batch_size": 8, "sampler": sampler, "ids_per_batch": 2, "seed": 7}
    cpu = BatchSource(x, y, device="cpu", **kw)
    gpu = BatchSource(x, y, device="cuda", memory_cap_bytes=cap, **kw)
    assert gpu.resident == (cap is None)
    for _ in range(2):
        for (a, la, ia), (b, lb, ib) in zip(cpu, gpu, strict=True):
            assert b.device.type == "cuda" and torch.equal(a, b.cpu()) and torch.equal(la, lb.cpu())
            assert ib.device.type == "cuda" and torch.equal(ia, ib.cpu())

