"""Image-folder, YouTube Faces (raw), FaceScrub, arrays and synthfaces loaders on fixtures
built here: reproducible splits, overlap and corrupt-file handling, exclusion by rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.api.errors import BenchError
from bench.data.faces import QUERY, TRAIN, VAL
from bench.data.integrity import enforce_no_overlap, find_overlaps, pixel_groups
from plugins.datasets.arrays import load_arrays
from plugins.datasets.facescrub import load_facescrub
from plugins.datasets.folder import load_folder
from plugins.datasets.synthfaces import generate, load_synthfaces
from plugins.datasets.ytf import load_ytf

RNG = np.random.default_rng(1234)


def save_image(path: Path, seed: int, size: int = 20, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """4 people x 6 images, one corrupt JPEG, one person with too few images, and one file
    copied into another person's folder (a duplicate that crosses splits under seed 0)."""
    root = tmp_path / "faces"
    for p, person in enumerate(["ann", "bob", "cid", "dee"]):
        for k in range(6):
            save_image(root / person / f"{k}.{'png' if k % 2 else 'jpg'}", seed=100 * p + k)
    (root / "bob" / "6.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    save_image(root / "eve" / "0.png", seed=999)
    save_image(root / "eve" / "1.png", seed=998)
    shutil.copy(root / "ann" / "3.png", root / "cid" / "7.png")
    (root / "notes.txt").write_text("ignored: not a folder")
    return root


def test_folder_refuses_the_duplicate_and_names_both_files(tree: Path) -> None:
    with pytest.raises(BenchError) as err:
        load_folder(tree, size=16)
    message = str(err.value)
    assert "1 image(s) shared between split parts" in message
    assert "identical file" in message and "ann/3.png" in message and "cid/7.png" in message
    assert "dataset.overlap=drop" in message


def test_folder_report_corrupt_excluded_and_dropped(tree: Path) -> None:
    data = load_folder(tree, size=16, overlap="drop")
    assert [row[0] for row in data.meta["corrupt"]] == ["bob/6.jpg"]
    assert data.meta["excluded_identities"] == {"eve": "2 image(s), the protocol needs 4"}
    assert data.identities == ["ann", "bob", "cid", "dee"]
    assert len(data.meta["overlap_dropped"]) == 1
    assert len(data.labels) == 6 + 6 + 7 + 6 - 1  # bob's corrupt file skipped, one copy dropped
    files = [path for path, _ in data.meta["files"]]
    assert "bob/6.jpg" not in files and len(files) == len(data.labels)
    assert not any(find_overlaps(data.split, pixel_groups(data.images)))
    assert data.images.shape[1:] == (3, 16, 16) and data.images.dtype == np.uint8


def test_folder_refuses_corrupt_files_when_asked(tree: Path) -> None:
    with pytest.raises(BenchError, match=r"1 corrupt or unreadable image\(s\): bob/6.jpg"):
        load_folder(tree, size=16, on_corrupt="refuse", overlap="drop")


def test_folder_pixels_match_the_files(tree: Path) -> None:
    data = load_folder(tree, size=20, overlap="drop")
    k = [path for path, _ in data.meta["files"]].index("dee/3.png")
    expected = np.asarray(Image.open(tree / "dee" / "3.png")).transpose(2, 0, 1)
    np.testing.assert_array_equal(data.images[k], expected)
    assert data.identities[data.labels[k]] == "dee"


def test_folder_split_is_reproducible_and_seeded(tree: Path) -> None:
    a = load_folder(tree, size=16, overlap="drop")
    b = load_folder(tree, size=16, overlap="drop")
    c = load_folder(tree, size=16, overlap="drop", split_seed=1)
    assert a.checksum() == b.checksum() and a.meta["files"] == b.meta["files"]
    np.testing.assert_array_equal(a.split, b.split)
    assert a.checksum() != c.checksum()
    for label in range(a.num_classes):
        own = a.split[a.labels == label]
        assert np.sum(own == QUERY) >= 1 and np.sum(own == VAL) <= 1 and np.sum(own == TRAIN) >= 1


def test_identical_pixels_in_different_files_are_caught(tmp_path: Path) -> None:
    (tmp_path / "bob").mkdir()
    for k in range(4):  # bob's BMPs repeat ann's PNG pixels: other bytes, identical pixels
        save_image(tmp_path / "ann" / f"{k}.png", seed=k)
        Image.open(tmp_path / "ann" / f"{k}.png").save(tmp_path / "bob" / f"{k}.bmp")
    with pytest.raises(BenchError, match="identical pixels") as err:
        load_folder(tmp_path, size=20)
    assert "identical file" not in str(err.value)


def test_overlap_check_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 3, (60, 1, 1, 2), dtype=np.uint8)  # many accidental duplicates
    split = rng.integers(0, 3, 60).astype(np.int8)
    expected = {j for i in range(60) for j in range(60)
                if split[i] < split[j] and np.array_equal(images[i], images[j])}
    keep, dropped = enforce_no_overlap("x", images, split, policy="drop")
    assert set(np.flatnonzero(~keep).tolist()) == expected and len(dropped) == len(expected)


def make_ytf(root: Path, people: dict[str, list[int]]) -> None:
    """``aligned_images_DB/<person>/<video>/aligned_detect_<v>.<k>.jpg`` with distinct frames."""
    for p, (person, videos) in enumerate(people.items()):
        for v, frames in enumerate(videos):
            for k in range(frames):
                save_image(root / "aligned_images_DB" / person / str(v + 1) / f"aligned_detect_{v + 1}.{k}.jpg",
                           seed=10_000 * p + 100 * v + k, size=24)


YTF_PEOPLE = {"Ann_A": [6, 5], "Bob_B": [5, 7], "Cid_C": [6, 6], "Solo_S": [12]}


def test_ytf_videos_protocol_keeps_query_and_gallery_videos_apart(tmp_path: Path) -> None:
    make_ytf(tmp_path, YTF_PEOPLE)
    options = dict(protocol="videos", train=4, query=2, val=1, size=16)
    data = load_ytf(tmp_path, **options)
    assert data.meta["excluded_identities"] == {"Solo_S": "1 video, the videos protocol needs 2"}
    assert data.identities == ["Ann_A", "Bob_B", "Cid_C"]
    assert data.counts() == {"train": 9, "val": 3, "query": 6}
    assert all((tmp_path / path).is_file() for path, _ in data.meta["files"])  # named from --data-root
    videos = np.array([path.split("/")[2] for path, _ in data.meta["files"]])
    for label in range(3):
        mine = data.labels == label
        query_videos = set(videos[mine & (data.split == QUERY)])
        assert len(query_videos) == 1
        assert query_videos.isdisjoint(videos[mine & (data.split != QUERY)])
    again = load_ytf(tmp_path, **options)
    assert again.checksum() == data.checksum() and again.meta["files"] == data.meta["files"]


def test_ytf_frames_protocol_and_independence_from_other_people(tmp_path: Path) -> None:
    make_ytf(tmp_path, YTF_PEOPLE)
    data = load_ytf(tmp_path / "aligned_images_DB", protocol="frames", train=10, query=2, val=2, size=16)
    assert data.meta["excluded_identities"] == {"Ann_A": "11 frames, the protocol needs 12"}
    assert data.counts() == {"train": 24, "val": 6, "query": 6}
    shutil.rmtree(tmp_path / "aligned_images_DB" / "Cid_C")
    fewer = load_ytf(tmp_path, protocol="frames", train=10, query=2, val=2, size=16)
    keep = [["aligned_images_DB/" + path, digest] for path, digest in data.meta["files"] if not path.startswith("Cid_C")]
    assert fewer.meta["files"] == keep  # each person's draw depends on its name, not on the others


def test_ytf_person_whose_chosen_video_is_corrupt_is_excluded(tmp_path: Path) -> None:
    make_ytf(tmp_path, YTF_PEOPLE)
    for frame in (tmp_path / "aligned_images_DB" / "Bob_B" / "2").iterdir():
        frame.write_bytes(frame.read_bytes()[:200])  # truncated JPEGs
    data = load_ytf(tmp_path, protocol="videos", train=4, query=2, val=1, size=16)
    assert data.meta["excluded_identities"]["Bob_B"] == "its train or query frames are all corrupt"
    assert data.identities == ["Ann_A", "Cid_C"] and len(data.meta["corrupt"]) in (2, 4)
    with pytest.raises(BenchError, match="corrupt or unreadable image"):
        load_ytf(tmp_path, protocol="videos", train=4, query=2, val=1, size=16, on_corrupt="refuse")


def test_ytf_rejects_unknown_protocol(tmp_path: Path) -> None:
    make_ytf(tmp_path, YTF_PEOPLE)
    with pytest.raises(BenchError, match="protocol='clips' is not one of frames, videos"):
        load_ytf(tmp_path, protocol="clips")


def test_facescrub_takes_five_queries_per_person(tmp_path: Path) -> None:
    for p, person in enumerate(["Actor_A", "Actress_B", "Actor_C"]):
        for k in range(8 + p):
            save_image(tmp_path / person / f"{person}_{k}.jpg", seed=50 * p + k, size=24)
    data = load_facescrub(tmp_path, val=1, size=16)
    counts = [int(np.sum((data.labels == c) & (data.split == QUERY))) for c in range(3)]
    assert counts == [5, 5, 5]
    assert data.counts() == {"train": 2 + 3 + 4, "val": 3, "query": 15}


def test_data_root_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEHASH_BENCH_DATA_ROOT", raising=False)
    with pytest.raises(BenchError, match="pass --data-root PATH"):
        load_folder()


def test_arrays_with_and_without_a_stored_split(tmp_path: Path) -> None:
    x = RNG.random((12, 8, 8))  # float in [0, 1], gray
    y = np.repeat(np.array(["p", "q", "r"]), 4)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    data = load_arrays(tmp_path / "a.npz", val=1, query=1)
    assert data.images.shape == (12, 3, 8, 8) and data.identities == ["p", "q", "r"]
    np.testing.assert_array_equal(data.images[:, 0], np.rint(x * 255).astype(np.uint8))
    assert data.meta["pixel_range"] == "[0, 1] scaled by 255"
    assert data.counts() == {"train": 6, "val": 3, "query": 3}
    split = np.tile(["train", "train", "val", "query"], 3)
    np.savez(tmp_path / "b.npz", x=(x * 255).astype(np.uint8), y=y, split=split)
    stored = load_arrays(tmp_path / "b.npz")
    np.testing.assert_array_equal(stored.split, np.tile([0, 0, 1, 2], 3))


def test_arrays_refuses_bad_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "neg.npz", x=RNG.normal(size=(4, 8, 8)), y=np.arange(4))
    with pytest.raises(BenchError, match="not \\[0, 1\\] or \\[0, 255\\]"):
        load_arrays(tmp_path / "neg.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([None, 1], dtype=object), y=np.arange(2))
    with pytest.raises(BenchError, match="without pickled objects"):
        load_arrays(tmp_path / "obj.npz")
    np.savez(tmp_path / "noy.npz", x=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(BenchError, match=r"missing array\(s\) \['y'\]"):
        load_arrays(tmp_path / "noy.npz")


def test_synthfaces_is_seeded_and_identity_k_is_stable() -> None:
    a = load_synthfaces(identities=6, images_per_identity=9, size=16)
    b = load_synthfaces(identities=6, images_per_identity=9, size=16)
    assert a.checksum() == b.checksum()
    assert a.counts() == {"train": 12, "val": 12, "query": 30}
    assert load_synthfaces(identities=6, images_per_identity=9, size=16, seed=1).checksum() != a.checksum()
    more = generate(identities=70, images_per_identity=9, size=16, seed=0)  # spans two render chunks
    np.testing.assert_array_equal(more[: 6 * 9], generate(6, 9, 16, 0))


def test_synthfaces_identity_shows_in_the_pixels() -> None:
    """Same-identity images are closer (on average) than different-identity ones."""
    x = generate(identities=20, images_per_identity=6, size=24, seed=3).astype(np.float32).reshape(120, -1)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    same = np.kron(np.eye(20, dtype=bool), np.ones((6, 6), dtype=bool)) & ~np.eye(120, dtype=bool)
    assert sim[same].mean() > sim[~same & ~np.eye(120, dtype=bool)].mean() + 0.1
    assert len(np.unique(pixel_groups(x.reshape(120, 1, 1, -1).view(np.uint8)))) == 120
