"""``folder``: any ``<root>/<identity>/*.{jpg,png,pgm,...}`` tree of face images.

Identities are the sub-folders (natural name order), images the image files inside
(natural order). Each image is cropped to a centred square (``crop`` x the shorter side),
resized to ``size`` x ``size`` RGB. Corrupt files are skipped with a logged count or
refused (``on_corrupt``); identities with fewer than ``min_images`` (default
``query + val + 1``) are reported and excluded; each identity then gives ``query`` and
``val`` images in a seeded order, the rest are train (and gallery). ``align="dlib"``: dlib's
face chips of the native images instead of the crop (:mod:`plugins.datasets.face_align`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.api.errors import BenchError
from bench.data.faces import FaceData
from bench.data.integrity import handle_corrupt
from plugins.datasets.assemble import ImagePool, finish, split_by_identity
from plugins.datasets.face_align import check_align
from plugins.datasets.imagefiles import image_files, read_images, relative, require_root, subdirs


def read_tree(dataset: str, root: Path, *, size: int, crop: float, on_corrupt: str,
              align: str = "none") -> tuple[ImagePool, list, dict]:
    """Every image of ``<root>/<identity>/``; returns the pool, the corrupt files and the
    alignment's record (empty unless aligned)."""
    if not root.is_dir():
        raise BenchError(f"dataset '{dataset}': {root} is not a folder; --data-root must name a folder of <identity>/ sub-folders")
    folders = subdirs(root)
    paths, owner = [], []
    for label, folder in enumerate(folders):
        files = image_files(folder)
        paths.extend(files)
        owner.extend([label] * len(files))
    if not paths:
        raise BenchError(f"dataset '{dataset}': no image files in the sub-folders of {root}; expected <root>/<identity>/*.jpg")
    read = read_images(paths, root, size=size, crop=crop, align=align)
    handle_corrupt(dataset, read.corrupt, on_corrupt)
    pool = ImagePool(
        read.images, np.asarray(owner, dtype=np.int64)[read.index], [f.name for f in folders],
        [relative(paths[k], root) for k in read.index], read.sha256,
    )
    return pool.take(np.ones(len(pool.labels), dtype=bool)), read.corrupt, read.meta  # drops empty folders


def load_image_tree(
    dataset: str, data_root: Path | None, *, size: int, crop: float, val: int, query: int,
    min_images: int | None, split_seed: int, on_corrupt: str, overlap: str, align: str = "none",
) -> FaceData:
    """The shared body of ``folder`` and ``facescrub``."""
    check_align(dataset, align)
    root = require_root(dataset, data_root, "a folder of <identity>/ image folders")
    pool, corrupt, aligned = read_tree(dataset, root, size=size, crop=crop, on_corrupt=on_corrupt, align=align)
    pool, split, excluded = split_by_identity(
        dataset, pool, val=val, query=query, split_seed=split_seed, min_images=min_images
    )
    meta = {"source": str(root), "excluded_identities": excluded, "corrupt": [list(c) for c in corrupt], **aligned}
    return finish(dataset, pool, split, overlap=overlap, meta=meta)


def image_tree_loader(dataset: str, *, val: int, query: int, doc: str):
    """A dataset loader for ``<root>/<identity>/*`` trees named ``dataset``, with its own
    default ``val`` and ``query`` images per identity (every option stays overridable)."""

    def load(
        data_root: Path | None = None,
        size: int = 32,
        crop: float = 1.0,
        val: int = val,
        query: int = query,
        min_images: int | None = None,
        split_seed: int = 0,
        on_corrupt: str = "skip",
        overlap: str = "refuse",
        align: str = "none",
    ) -> FaceData:
        return load_image_tree(
            dataset, data_root, size=size, crop=crop, val=val, query=query, min_images=min_images,
            split_seed=split_seed, on_corrupt=on_corrupt, overlap=overlap, align=align,
        )

    load.__name__ = load.__qualname__ = f"load_{dataset}"
    load.__doc__ = doc
    return load


load_folder = image_tree_loader(
    "folder", val=1, query=2, doc="Any <root>/<identity>/*.jpg|png|pgm... tree, split per identity (query 2, val 1)."
)
