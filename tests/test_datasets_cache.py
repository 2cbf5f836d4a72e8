"""The compact dataset cache (memory-mapped entries, manifest, atomic writes, verify) and
the ``bench data`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.api.errors import BenchError
from bench.api.pluginhost import load_plugins
from bench.cli import main
from bench.data import cache as datacache

SMALL = {"identities": 4, "images_per_identity": 9, "size": 16}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(datacache.CACHE_ENV, str(root))
    return root


@pytest.fixture(scope="module")
def host():
    return load_plugins()


def test_cached_data_equals_the_built_data(cache: Path, host) -> None:
    direct = datacache.load_dataset(host, "synthfaces", None, SMALL, use_cache=False)
    cached = datacache.load_dataset(host, "synthfaces", None, SMALL)
    assert isinstance(cached.images, np.memmap)
    for name in ("images", "labels", "split"):
        np.testing.assert_array_equal(getattr(cached, name), getattr(direct, name))
    assert cached.checksum() == direct.checksum() and cached.identities == direct.identities
    entries = [p.name for p in cache.iterdir()]
    assert len(entries) == 1 and not any(n.startswith(".") for n in entries)  # no temporary left
    manifest = json.loads((cache / entries[0] / "manifest.json").read_text())
    assert manifest["split_checksum"] == direct.checksum()
    assert manifest["options"] == {**SMALL, "val": 2, "query": 5, "seed": 0, "split_seed": None}
    assert manifest["counts"] == direct.counts()


def test_key_follows_resolved_options(cache: Path, host) -> None:
    a = datacache.make_request(host, "synthfaces", None, SMALL)
    assert a.key == datacache.make_request(host, "synthfaces", None, {**SMALL, "seed": 0}).key
    assert a.key != datacache.make_request(host, "synthfaces", None, {**SMALL, "seed": 1}).key
    with pytest.raises(BenchError, match="unknown option 'identites' for dataset 'synthfaces'"):
        datacache.make_request(host, "synthfaces", None, {"identites": 3})


def test_prepare_keeps_an_entry_unless_forced(cache: Path, host) -> None:
    path = datacache.prepare(host, "synthfaces", None, SMALL)
    stamp = (path / "manifest.json").stat().st_mtime_ns
    assert datacache.prepare(host, "synthfaces", None, SMALL) == path
    assert (path / "manifest.json").stat().st_mtime_ns == stamp
    datacache.prepare(host, "synthfaces", None, SMALL, force=True)
    assert (path / "manifest.json").stat().st_mtime_ns != stamp
    assert sorted(p.name for p in cache.iterdir()) == [path.name]


def test_verify_detects_a_damaged_entry(cache: Path, host) -> None:
    path = datacache.prepare(host, "synthfaces", None, SMALL)
    assert all(ok for _, ok, _ in datacache.verify_entry(path))
    raw = bytearray((path / "images.npy").read_bytes())
    raw[-1] ^= 0xFF
    (path / "images.npy").write_bytes(bytes(raw))
    rows = {check: ok for check, ok, _ in datacache.verify_entry(path)}
    assert rows == {"sha256 images.npy": False, "sha256 labels.npy": True, "sha256 split.npy": True}
    with pytest.raises(BenchError, match="is damaged"):
        datacache.open_entry(path)


def test_folder_entry_records_and_rechecks_source_files(cache: Path, host, tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for p, person in enumerate(("ann", "bob")):
        (root / person).mkdir(parents=True)
        for k in range(5):
            pixels = np.random.default_rng(10 * p + k).integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / person / f"{k}.png")
    path = datacache.prepare(host, "folder", root, {"size": 12})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["data_root"] == str(root.resolve())
    assert len(manifest["files"]) == 10
    assert {row[2] for row in manifest["files"]} == {"train", "val", "query"}
    assert manifest["files"][0][1] == datacache.sha256_file(root / manifest["files"][0][0])
    assert datacache.find_entries("folder", root) == [path] and datacache.find_entries("folder", tmp_path) == []
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(root / "bob" / "3.png")
    rows = {check: (ok, detail) for check, ok, detail in datacache.verify_entry(path)}
    assert rows["source files"] == (False, f"10 files under {root.resolve()}; missing 0, changed 1 (first: bob/3.png)")


def bench(*args: str) -> int:
    """Run the ``bench`` command line; returns its exit code."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    return exit_.value.code or 0


def test_cli_prepare_info_verify(cache: Path, capsys: pytest.CaptureFixture) -> None:
    sets = ["--set", "identities=3", "--set", "dataset.images_per_identity=8", "--set", "size=16"]
    assert bench("data", "verify", "synthfaces", *sets) == 2
    assert "no cache entry for dataset 'synthfaces'" in capsys.readouterr().err
    assert bench("data", "info", "synthfaces", *sets) == 0
    out = capsys.readouterr().out
    assert "not cached" in out and "3 x 16 x 16" in out
    assert bench("data", "prepare", "synthfaces", *sets) == 0
    capsys.readouterr()
    assert bench("data", "info", "synthfaces", *sets) == 0
    out = capsys.readouterr().out
    entry = datacache.find_entries("synthfaces")[0]
    # the checksum `bench run` reports: at the protocol's input size (32), not the native 16
    from bench.data.loading import at_input_size
    assert at_input_size(datacache.open_entry(entry), 32).checksum() in out and "not cached" not in out
    rows = [line.replace("│", " ").split()[:2] for line in out.splitlines()]
    assert [r for r in rows if r[:1] in (["train"], ["val"], ["query"])] == [["train", "3"], ["val", "6"], ["query", "15"]]
    assert bench("data", "verify", "synthfaces") == 0
    assert "FAILED" not in capsys.readouterr().out
