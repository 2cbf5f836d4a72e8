"""Face alignment for ``dlib-resnet`` (dlib's detector, 5 landmarks, ``get_face_chip``): the
stated fallback, its count, the cache, and the one-line refusal of small crops."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import BenchError
from bench.api.pluginhost import load_plugins
from bench.cli import main
from bench.data import cache as datacache
from plugins.datasets import face_align
from plugins.datasets.face_align import (
    CHIP_SIZE,
    DlibAligner,
    align_images,
    as_rgb,
    whole_image_chip,
)
from plugins.datasets.orl import orl_root, read_pgm, repair_pgm

pytest.importorskip("dlib")
#: s1/2, s33/2 and s33/4 have no face the frontal detector finds (measured; 12 of ORL's 398 in all).
PICKED = {"s1": (1, 2, 3, 4, 5), "s33": (1, 2, 3, 4, 5)}
OPTIONS = {"align": "dlib", "size": CHIP_SIZE}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(datacache.CACHE_ENV, str(root))
    return root


@pytest.fixture
def small_orl(tmp_path: Path) -> Path:
    """Ten ORL originals of two people, in ORL's layout."""
    root = tmp_path / "orl"
    for subject, numbers in PICKED.items():
        (root / subject).mkdir(parents=True)
        for n in numbers:
            shutil.copy(orl_root() / subject / f"{n}.pgm", root / subject / f"{n}.pgm")
    return root


def orl_image(name: str) -> np.ndarray:
    return read_pgm(repair_pgm((orl_root() / name).read_bytes()))


def test_a_face_is_aligned_and_a_blank_image_falls_back_to_the_whole_image() -> None:
    blank = np.random.default_rng(0).integers(100, 110, (112, 92), dtype=np.uint8)
    aligned = align_images([orl_image("s1/1.pgm"), blank])
    assert aligned.chips.shape == (2, 3, CHIP_SIZE, CHIP_SIZE)
    assert aligned.fallback.tolist() == [False, True]
    assert np.array_equal(aligned.chips[1].transpose(1, 2, 0), whole_image_chip(as_rgb(blank), CHIP_SIZE))
    # the aligned chip is not the resized whole image (guard: alignment did something)
    assert not np.array_equal(aligned.chips[0].transpose(1, 2, 0), whole_image_chip(as_rgb(orl_image("s1/1.pgm")), CHIP_SIZE))
    chip, found = DlibAligner().chip(orl_image("s1/2.pgm"))
    assert not found and chip.shape == (CHIP_SIZE, CHIP_SIZE, 3)


def test_orl_alignment_is_counted_cached_and_shown(cache: Path, small_orl: Path, monkeypatch, capsys) -> None:
    host = load_plugins()
    calls = []
    real = face_align.align_images

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("plugins.datasets.orl.align_images", counting)
    first = datacache.load_dataset(host, "orl", small_orl, OPTIONS)
    second = datacache.load_dataset(host, "orl", small_orl, OPTIONS)
    assert len(calls) == 1  # the second load reads the cache entry
    assert first.images.shape == (10, 3, CHIP_SIZE, CHIP_SIZE) and np.array_equal(first.images, second.images)
    assert second.meta["alignment_fallback"] == ["s1/2.pgm", "s33/2.pgm", "s33/4.pgm"]
    assert second.meta["run_tags"] == {"alignment": "dlib-5pt", "alignment.fallback": "3"}
    unaligned = datacache.load_dataset(host, "orl", small_orl, {"size": CHIP_SIZE})
    assert unaligned.checksum() != second.checksum() and "alignment" not in unaligned.meta
    with pytest.raises(SystemExit) as exit_:
        main(["data", "info", "orl", "--data-root", str(small_orl), "--set", "align=dlib", "--set", "size=150"])
    assert exit_.value.code in (0, None)
    assert "3 of 10 images without a detected face" in capsys.readouterr().out


def test_unknown_alignment_and_small_crops_get_one_line(tmp_path: Path) -> None:
    from plugins.datasets.orl import load_orl

    with pytest.raises(BenchError, match="align='mtcnn' is unknown"):
        load_orl(align="mtcnn")
    host = load_plugins()
    from bench.api.interfaces import BuildContext

    with pytest.raises(BenchError, match="DDH pickles' 32x32 cannot serve it"):
        host.backbones.build("dlib-resnet", BuildContext(bits=12, num_classes=2, input_shape=(3, 32, 32)))


def test_image_folders_align_their_native_images(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "faces"
    for subject, numbers in PICKED.items():
        (root / subject).mkdir(parents=True)
        for n in numbers:
            Image.fromarray(orl_image(f"{subject}/{n}.pgm")).save(root / subject / f"{n}.png")
    data = load_plugins().datasets.build("folder", root, align="dlib", size=CHIP_SIZE)
    assert data.images.shape[1:] == (3, CHIP_SIZE, CHIP_SIZE)
    assert data.meta["alignment_fallback"] == ["s1/2.png", "s33/2.png", "s33/4.png"]
