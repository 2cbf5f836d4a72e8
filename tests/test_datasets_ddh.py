"""DDH-format pickles built here: the loader's split, the size check against the
reference and the restricted unpickler (a crafted pickle is refused and runs nothing)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import BenchError
from bench.data.faces import QUERY, TRAIN, VAL
from plugins.datasets.ddh_pickles import (
    REFERENCE,
    check_sizes,
    load_facescrub_ddh,
    load_ytf_ddh,
    safe_load,
)

TRAIN_PER_ID, TEST_PER_ID, IDS = 8, 2, 4


def write_pair(root: Path, names: tuple[str, str], *, protocol: int = 2, scale: float = 1.0) -> dict:
    """Train and test pickles of IDS identities (labels 10, 20, ...), integer pixel values."""
    rng = np.random.default_rng(5)
    out = {}
    for name, per in zip(names, (TRAIN_PER_ID, TEST_PER_ID), strict=True):
        x = rng.integers(0, 256, (IDS * per, 3072)).astype(np.float64) * scale
        y = np.repeat(np.arange(1, IDS + 1) * 10, per)
        (root / name).write_bytes(pickle.dumps((x, y), protocol=protocol))
        out[name] = (x, y)
    return out


@pytest.fixture
def ytf_dir(tmp_path: Path) -> tuple[Path, dict]:
    ref = REFERENCE["ytf-ddh"]
    return tmp_path, write_pair(tmp_path, (ref.train_file, ref.test_file))


def test_split_and_pixels_follow_the_files(ytf_dir: tuple[Path, dict]) -> None:
    root, arrays = ytf_dir
    data = load_ytf_ddh(root, val=2, check_sizes=False)
    (train_x, train_y), (test_x, test_y) = arrays.values()
    assert data.identities == ["10", "20", "30", "40"]
    assert data.counts() == {"train": IDS * (TRAIN_PER_ID - 2), "val": IDS * 2, "query": IDS * TEST_PER_ID}
    n = len(train_y)
    np.testing.assert_array_equal(data.images[:n].reshape(n, -1), train_x.astype(np.uint8))  # CHW kept
    np.testing.assert_array_equal(data.images[n:].reshape(len(test_y), -1), test_x.astype(np.uint8))
    assert np.all(data.split[n:] == QUERY) and set(data.split[:n].tolist()) == {TRAIN, VAL}
    for label in range(IDS):
        assert np.sum((data.labels[:n] == label) & (data.split[:n] == VAL)) == 2
    assert data.meta["pixel_range"] == {"train": "[0, 255] integers", "test": "[0, 255] integers"}
    assert [name for name, _ in data.meta["files"]] == [REFERENCE["ytf-ddh"].train_file, REFERENCE["ytf-ddh"].test_file]
    again = load_ytf_ddh(root, val=2, check_sizes=False)
    assert again.checksum() == data.checksum()
    assert load_ytf_ddh(root, val=2, check_sizes=False, split_seed=3).checksum() != data.checksum()
    assert load_ytf_ddh(root, val=0, check_sizes=False).counts()["train"] == IDS * TRAIN_PER_ID


def test_wrong_size_files_get_the_clear_error(ytf_dir: tuple[Path, dict]) -> None:
    root, _ = ytf_dir
    with pytest.raises(BenchError) as err:
        load_ytf_ddh(root)
    message = str(err.value)
    assert "4 identities with 32 train / 8 test images" in message
    assert "1,595 identities, 63,800 / 7,975" in message and "dataset.check_sizes=false" in message


def test_size_check_accepts_exactly_the_reference() -> None:
    for name in ("ytf-ddh", "facescrub-ddh"):
        ref = REFERENCE[name]
        test_y = np.repeat(np.arange(ref.identities), 5)
        train_y = np.arange(ref.train) % ref.identities
        check_sizes(name, ref, train_y, test_y)  # passes
        with pytest.raises(BenchError, match="the reference is"):
            check_sizes(name, ref, train_y[:-1], test_y)
        with pytest.raises(BenchError, match="the reference is"):
            check_sizes(name, ref, train_y, np.r_[test_y[:-1], 0])  # 6 and 4 test images for two people


def test_facescrub_file_names_and_python2_style_pickles(tmp_path: Path) -> None:
    ref = REFERENCE["facescrub-ddh"]
    write_pair(tmp_path, (ref.train_file + ".pkl", ref.test_file + ".pkl"), scale=1 / 255)
    raw = (tmp_path / (ref.train_file + ".pkl")).read_bytes()
    assert b"numpy._core" in raw  # rewrite to the module names numpy 1.x pickles carry
    (tmp_path / (ref.train_file + ".pkl")).write_bytes(raw.replace(b"numpy._core", b"numpy.core"))
    data = load_facescrub_ddh(tmp_path, val=1, check_sizes=False)
    assert data.meta["pixel_range"]["train"] == "[0, 1] scaled by 255"
    assert data.counts()["query"] == IDS * TEST_PER_ID


def split_into_folder(root: Path, name: str, x: np.ndarray, y: np.ndarray, parts: list[str]) -> None:
    """The released layout: a folder ``name`` of pickles whose sorted names give the order."""
    (root / name).mkdir()
    for part, xs, ys in zip(parts, np.array_split(x, len(parts)), np.array_split(y, len(parts)), strict=True):
        (root / name / part).write_bytes(pickle.dumps((xs, ys), protocol=2))


@pytest.mark.parametrize("dataset", ["ytf-ddh", "facescrub-ddh"])
def test_folders_of_pickles_read_in_sorted_order_give_the_same_data(tmp_path: Path, dataset: str) -> None:
    ref, load = REFERENCE[dataset], {"ytf-ddh": load_ytf_ddh, "facescrub-ddh": load_facescrub_ddh}[dataset]
    single, folders = tmp_path / "single", tmp_path / "folders"
    single.mkdir(), folders.mkdir()
    arrays = write_pair(single, (ref.train_file, ref.test_file))
    (train_x, train_y), (test_x, test_y) = arrays.values()
    # sorted name order (part_1, part_10, part_2) is neither numeric nor creation order
    split_into_folder(folders, ref.train_file, train_x, train_y, ["part_1", "part_10", "part_2"])
    split_into_folder(folders, ref.test_file, test_x, test_y, ["a", "b"])
    one, many = load(single, val=2, check_sizes=False), load(folders, val=2, check_sizes=False)
    assert many.checksum() == one.checksum()
    np.testing.assert_array_equal(many.images, one.images)
    np.testing.assert_array_equal(many.labels, one.labels)
    assert [name for name, _ in many.meta["files"]] == [
        f"{ref.train_file}/part_1", f"{ref.train_file}/part_10", f"{ref.train_file}/part_2",
        f"{ref.test_file}/a", f"{ref.test_file}/b"]
    # the guard: another order of the same parts is other data
    (folders / ref.train_file / "part_10").rename(folders / ref.train_file / "part_3")
    assert load(folders, val=2, check_sizes=False).checksum() != one.checksum()


def test_a_pickle_folder_with_other_entries_is_refused(tmp_path: Path) -> None:
    ref = REFERENCE["ytf-ddh"]
    write_pair(tmp_path, ("unused", ref.test_file))
    (tmp_path / ref.train_file).mkdir()
    with pytest.raises(BenchError, match="it is empty"):
        load_ytf_ddh(tmp_path, check_sizes=False)
    (tmp_path / ref.train_file / "sub").mkdir()
    with pytest.raises(BenchError, match=f"the folder {tmp_path / ref.train_file} must hold only pickle files"):
        load_ytf_ddh(tmp_path, check_sizes=False)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="has no file or folder 'train_vec_folder_32_32'"):
        load_ytf_ddh(tmp_path)


class Exploit:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "executed"
    ref = REFERENCE["ytf-ddh"]
    arrays = write_pair(tmp_path, (ref.train_file, ref.test_file))
    x, y = arrays[ref.train_file]
    evil = tmp_path / ref.train_file
    evil.write_bytes(pickle.dumps((x, [Exploit(marker)] + list(y[1:])), protocol=protocol))
    with pytest.raises(BenchError) as err:
        load_ytf_ddh(tmp_path, check_sizes=False)
    assert f"refusing to unpickle {evil}" in str(err.value)
    assert "'posix.system'" in str(err.value) or "'os.system'" in str(err.value)
    assert not marker.exists()
    # the same payload through an ordinary pickle.load would have run: the test can fail
    pickle.loads(evil.read_bytes())
    assert marker.exists()


def test_other_globals_are_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "p"
    for payload in (pickle.dumps(Path("x")), pickle.dumps(complex(1, 2)), pickle.dumps(np.random.default_rng(0))):
        path.write_bytes(payload)
        with pytest.raises(BenchError, match="refusing to unpickle"):
            safe_load(path)
    path.write_bytes(b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1;\x85R.")
    with pytest.raises(BenchError, match="'builtins.eval'"):
        safe_load(path)
    path.write_bytes(pickle.dumps((np.zeros(3), [1, 2.5], (np.int64(4),)), protocol=2))
    value = safe_load(path)
    assert value[1] == [1, 2.5] and int(value[2][0]) == 4
