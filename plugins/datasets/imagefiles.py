"""Reading face images from files: listing in a stable order, decoding, a centred square
crop, resizing to ``size`` x ``size`` RGB uint8, and the sha256 of every file read; or,
with ``align="dlib"``, dlib's face chips of the native-resolution images
(:mod:`plugins.datasets.face_align`; no crop, decoded and aligned one file at a time).

Unreadable files are returned as ``(path, reason)`` for :func:`bench.data.integrity.handle_corrupt`.
Decoding runs on a few threads (Pillow releases the GIL while decoding).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bench.api.errors import BenchError
from bench.data.cache import DATA_ROOT_ENV
from bench.data.imagefile import crop_box
from plugins.datasets.face_align import DlibAligner, alignment_meta

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically.

    >>> sorted(["f10.jpg", "f2.jpg", "f1.jpg"], key=natural_key)
    ['f1.jpg', 'f2.jpg', 'f10.jpg']
    """
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def subdirs(folder: Path) -> list[Path]:
    """Sub-folders in natural name order (hidden ones skipped)."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: natural_key(p.name))


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` in natural name order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def require_root(dataset: str, data_root: Path | None, what: str) -> Path:
    """The dataset's folder or file: ``data_root``, else ``$FACEHASH_BENCH_DATA_ROOT/<dataset>``."""
    if data_root is None and os.environ.get(DATA_ROOT_ENV):
        data_root = Path(os.environ[DATA_ROOT_ENV]) / dataset
    if data_root is None:
        raise BenchError(
            f"dataset '{dataset}' reads {what}; pass --data-root PATH, or set {DATA_ROOT_ENV} "
            f"to a folder that holds a '{dataset}' entry"
        )
    root = Path(data_root).expanduser()
    if not root.exists():
        raise BenchError(f"dataset '{dataset}': {root} does not exist; --data-root must name {what}")
    return root


def decode(raw: bytes, size: int, crop: float) -> np.ndarray:
    """Decode image bytes into a (3, size, size) uint8 array (centred crop, then resize)."""
    with Image.open(io.BytesIO(raw)) as im:
        if im.format == "JPEG":  # let libjpeg decode at a reduced scale when that is enough
            im.draft("RGB", (max(1, round(size / crop)),) * 2)
        im.load()
        rgb = im.convert("RGB")
    rgb = rgb.crop(crop_box(*rgb.size, crop)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def decode_native(raw: bytes) -> np.ndarray:
    """Decode image bytes into an (H, W, 3) uint8 RGB array at the file's resolution."""
    with Image.open(io.BytesIO(raw)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


@dataclass
class ReadResult:
    """Decoded images of the readable files, with their paths and hashes, and the rest."""

    images: np.ndarray
    index: np.ndarray  # position of each decoded image in the requested path list
    sha256: list[str]
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # the alignment's record (alignment_meta), when aligned


def read_images(paths: list[Path], root: Path, *, size: int, crop: float, align: str = "none") -> ReadResult:
    """Read and decode ``paths``; failures are listed (relative to ``root``) as corrupt.
    ``align="dlib"``: dlib's ``size`` px face chips of the whole images (``crop`` unused)."""
    if not 0 < crop <= 1:
        raise BenchError(f"crop={crop} must be in (0, 1]: the side of the centred square as a fraction of the shorter image side")
    aligner = DlibAligner(size) if align == "dlib" else None
    fallback: set[Path] = set()

    def one(path: Path) -> tuple[np.ndarray | None, str, str]:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return None, "", f"unreadable: {exc.strerror or exc}"
        digest = hashlib.sha256(raw).hexdigest()
        try:
            if aligner is None:
                return decode(raw, size, crop), digest, ""
            native = decode_native(raw)
        except Exception as exc:  # noqa: BLE001 - every decoder failure means a corrupt file
            return None, digest, f"{type(exc).__name__}: {exc}"
        chip, found = aligner.chip(native)
        if not found:
            fallback.add(path)
        return chip.transpose(2, 0, 1), digest, ""

    start = time.perf_counter()
    workers = 1 if aligner is not None else min(8, os.cpu_count() or 1)  # dlib's models: one thread
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, paths))
    images, index, hashes, corrupt = [], [], [], []
    for k, (path, (pixels, digest, problem)) in enumerate(zip(paths, results, strict=True)):
        if pixels is None:
            corrupt.append((relative(path, root), problem))
            continue
        images.append(pixels)
        index.append(k)
        hashes.append(digest)
    stacked = np.stack(images) if images else np.zeros((0, 3, size, size), np.uint8)
    meta = {} if aligner is None else alignment_meta(
        [relative(p, root) for p in paths if p in fallback], len(images), size, time.perf_counter() - start)
    return ReadResult(stacked, np.asarray(index, dtype=np.int64), hashes, corrupt, meta)


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (the name shown to users)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
