"""``arrays``: images and labels from an ``.npz`` file (``--data-root`` names the file).

Keys: ``x`` (N, H, W) or (N, H, W, C) with C in 1, 3 (``layout='nchw'`` for (N, C, H, W)),
uint8, or float in [0, 1] or [0, 255] (rounded to uint8; the range is recorded in
``meta['pixel_range']``); ``y`` (N,) identity labels (any integers or strings); optional
``split`` (N,) with 0/1/2 or 'train'/'val'/'query'. Without ``split``, the per-identity
rule of ``folder`` applies (``query``, ``val``, ``min_images``). Gray images are
replicated to 3 channels; ``size`` resizes (default: keep the stored size).
The file is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from bench.api.errors import BenchError
from bench.data.faces import SPLIT_NAMES, FaceData
from bench.data.integrity import exclude_small_identities
from bench.data.preprocess import resize_uint8
from plugins.datasets.assemble import ImagePool, finish, split_by_identity
from plugins.datasets.imagefiles import require_root

LAYOUTS = ("nhwc", "nchw")


def to_uint8(x: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """uint8 pixels from uint8, or float in [0, 1] (scaled) or [0, 255] (rounded).

    >>> to_uint8(np.array([0.0, 0.5, 1.0]), "x")
    (array([  0, 128, 255], dtype=uint8), '[0, 1] scaled by 255')
    >>> to_uint8(np.array([0.0, 254.6]), "x")[0]
    array([  0, 255], dtype=uint8)
    """
    if x.dtype == np.uint8:
        return x, "uint8"
    if x.dtype.kind not in "fiu":
        raise BenchError(f"{what}: pixels of dtype {x.dtype} are not numbers; store uint8 or float pixels")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
        raise BenchError(f"{what}: pixel values span [{lo:g}, {hi:g}], not [0, 1] or [0, 255]; store raw pixels, not normalised ones")
    if x.dtype.kind == "f" and hi <= 1.0:
        return np.rint(x * 255.0).astype(np.uint8), "[0, 1] scaled by 255"
    exact = x.dtype.kind in "iu" or bool(np.all(x == np.rint(x)))
    return np.rint(x).astype(np.uint8), "[0, 255] integers" if exact else "[0, 255] rounded"


def to_nchw(x: np.ndarray, layout: str, what: str) -> np.ndarray:
    """(N, C, H, W) with 3 channels from (N, H, W), (N, H, W, C) or (N, C, H, W).

    >>> to_nchw(np.zeros((2, 5, 4, 1)), "nhwc", "x").shape
    (2, 3, 5, 4)
    """
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise BenchError(f"{what}: x has shape {x.shape}; expected (N, H, W) or (N, H, W, C)")
    if x.shape[1] not in (1, 3):
        raise BenchError(
            f"{what}: {x.shape[1]} channels in layout {layout}; expected 1 or 3 "
            "(set dataset.layout=nchw for (N, C, H, W) arrays)"
        )
    return np.ascontiguousarray(np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x)


def parse_split(split: np.ndarray, n: int, what: str) -> np.ndarray:
    """0/1/2 or 'train'/'val'/'query' -> int8 codes.

    >>> parse_split(np.array(["train", "query"]), 2, "x").tolist()
    [0, 2]
    """
    if split.shape != (n,):
        raise BenchError(f"{what}: split has shape {split.shape} but there are {n} images")
    if split.dtype.kind in "US":
        codes = {name: code for code, name in SPLIT_NAMES.items()}
        bad = sorted(set(split.astype(str).tolist()) - set(codes))
        if bad:
            raise BenchError(f"{what}: split values {bad} are not train/val/query")
        return np.asarray([codes[s] for s in split.astype(str).tolist()], dtype=np.int8)
    if split.dtype.kind not in "iu" or not np.isin(split, list(SPLIT_NAMES)).all():
        raise BenchError(f"{what}: split must hold 0 (train), 1 (val), 2 (query) or their names")
    return split.astype(np.int8)


def load_arrays(
    data_root: Path | None = None,
    size: int | None = None,
    layout: str = "nhwc",
    val: int = 1,
    query: int = 2,
    min_images: int | None = None,
    split_seed: int = 0,
    overlap: str = "refuse",
) -> FaceData:
    """Images x, labels y and optional split from an .npz file (--data-root names the file)."""
    path = require_root("arrays", data_root, "an .npz file with x and y")
    what = f"dataset 'arrays' ({path})"
    if layout not in LAYOUTS:
        raise BenchError(f"{what}: layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BenchError(f"{what}: not a readable .npz without pickled objects ({exc})") from None
    missing = [k for k in ("x", "y") if k not in stored]
    if missing:
        raise BenchError(f"{what}: missing array(s) {missing}; the file holds {sorted(stored)}")
    x, pixel_range = to_uint8(stored["x"], what)
    images = to_nchw(x, layout, what)
    y = stored["y"]
    if y.shape != (len(images),):
        raise BenchError(f"{what}: y has shape {y.shape} but x holds {len(images)} images")
    if size is not None:
        images = resize_uint8(images, size)
    names, labels = np.unique(y, return_inverse=True)
    pool = ImagePool(images, labels.reshape(-1).astype(np.int64), [str(v) for v in names.tolist()])
    excluded: dict[str, str] = {}
    if "split" in stored:
        split = parse_split(stored["split"], len(images), what)
        if min_images is not None:  # the stored split is kept; only the rule removes identities
            keep, excluded = exclude_small_identities("arrays", pool.labels, pool.identities, min_images)
            pool, split = pool.take(keep), split[keep]
    else:
        pool, split, excluded = split_by_identity(
            "arrays", pool, val=val, query=query, split_seed=split_seed, min_images=min_images
        )
    meta = {"source": str(path), "pixel_range": pixel_range, "excluded_identities": excluded,
            "stored_split": "split" in stored}
    return finish("arrays", pool, split, overlap=overlap, meta=meta)
