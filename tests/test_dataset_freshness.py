"""Issue 24 item 1 (and issue 23 item 8, the dataset cache): a dataset rebuilt at the same
path is seen (size and modification time, then content), rebuilt and announced; the
per-process cache is bounded and its entries are read-only."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.api.pluginhost import load_plugins
from bench.config.settings import build_protocol
from bench.data import cache as datacache
from bench.data import loading


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(datacache.CACHE_ENV, str(root))
    monkeypatch.setattr(loading, "_LOADED", {})
    return root


@pytest.fixture(scope="module")
def host():
    return load_plugins()


def write_npz(path: Path, identities: int, per_identity: int = 10, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (identities * per_identity, 8, 8), dtype=np.uint8)
    np.savez(path, x=x, y=np.repeat(np.arange(identities), per_identity))


def protocol(dataset: str = "arrays", **options):
    return build_protocol({"dataset": dataset, "input_size": 8}, {}, options)


def test_a_regenerated_npz_is_rebuilt_and_said(cache, host, tmp_path, caplog) -> None:
    data_file = tmp_path / "data.npz"
    write_npz(data_file, 6)
    first = loading.dataset_for(host, protocol(), str(data_file))
    assert len(first.labels) == 60
    write_npz(data_file, 10, seed=1)  # the same path, 100 images now
    with caplog.at_level(logging.WARNING):
        second = loading.dataset_for(host, protocol(), str(data_file))
    assert len(second.labels) == 100 and second.checksum() != first.checksum()
    assert "source files changed since the cache entry was built (data.npz changed" in caplog.text
    assert "rebuilding" in caplog.text
    # a fresh process (no per-process cache) reads the rebuilt entry, without a word
    loading._LOADED.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = datacache.load_dataset(host, "arrays", data_file, {})
    assert len(third.labels) == 100 and "changed" not in caplog.text


def test_a_touched_file_with_the_same_content_is_not_rebuilt(cache, host, tmp_path, caplog) -> None:
    data_file = tmp_path / "data.npz"
    write_npz(data_file, 4)
    datacache.load_dataset(host, "arrays", data_file, {})
    [entry] = datacache.find_entries("arrays")
    images = (entry / "images.npy").stat().st_mtime_ns
    later = data_file.stat().st_mtime_ns + 10**9
    os.utime(data_file, ns=(later, later))
    with caplog.at_level(logging.WARNING):
        datacache.load_dataset(host, "arrays", data_file, {})
    assert "changed" not in caplog.text and (entry / "images.npy").stat().st_mtime_ns == images
    recorded = datacache.read_manifest(entry)["sources"]["files"]["data.npz"]
    assert recorded[1] == later  # the new time is kept, so the next check is a stat again


def test_an_image_folder_that_gains_a_file_is_rebuilt(cache, host, tmp_path, caplog) -> None:
    root = tmp_path / "faces"
    for p, person in enumerate(("ann", "bob")):
        (root / person).mkdir(parents=True)
        for k in range(5):
            pixels = np.random.default_rng(10 * p + k).integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / person / f"{k}.png")
    options = {"size": 12, "min_images": 2, "query": 1, "val": 0}
    assert len(datacache.load_dataset(host, "folder", root, options).labels) == 10
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(root / "bob" / "5.png")
    with caplog.at_level(logging.WARNING):
        assert len(datacache.load_dataset(host, "folder", root, options).labels) == 11
    assert "bob/5.png added" in caplog.text


def test_the_per_process_cache_is_bounded_and_read_only(cache, host, monkeypatch) -> None:
    monkeypatch.setattr(loading, "LOADED_LIMIT", 2)
    small = {"identities": 3, "images_per_identity": 8, "size": 8}
    kept = [loading.dataset_for(host, protocol("synthfaces", **small, seed=s), None) for s in range(3)]
    assert len(loading._LOADED) == 2  # the oldest was dropped
    for data in kept:
        for name in ("images", "labels", "split"):
            assert not getattr(data, name).flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        kept[-1].images[0, 0, 0, 0] = 1
    raw = datacache.load_dataset(host, "synthfaces", None, small)
    resized = loading.at_input_size(raw, 16)
    assert raw.images.shape[2:] == (8, 8) and resized.images.shape[2:] == (16, 16)  # not in place
