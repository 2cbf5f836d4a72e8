"""``facescrub``: a folder of downloaded FaceScrub images, ``<root>/<person>/*.jpg``.

As in the face-hashing papers, 5 images of each person are queries; validation images
(``val``, default 5) are carved from the rest, which are train and gallery. FaceScrub
is distributed as URLs, so downloads differ between users: dead links saved as HTML are
the usual corrupt files (skipped with a logged count by default, ``on_corrupt=refuse``
to stop), and re-uploads of one photo are the usual duplicates (the overlap check
refuses the split; ``overlap=drop`` drops the val/query copies and records them).
Images are used as given (``crop=1.0``: the centred square of the whole image); pass a
smaller ``crop`` for uncropped downloads.
"""

from __future__ import annotations

from pathlib import Path

from bench.data import FaceData
from plugins.datasets.folder import load_image_tree


def load_facescrub(
    data_root: Path | None = None,
    size: int = 32,
    crop: float = 1.0,
    val: int = 5,
    query: int = 5,
    min_images: int | None = None,
    split_seed: int = 0,
    on_corrupt: str = "skip",
    overlap: str = "refuse",
) -> FaceData:
    """Downloaded FaceScrub, <root>/<person>/*.jpg, 5 query images per person."""
    return load_image_tree(
        "facescrub", data_root, size=size, crop=crop, val=val, query=query, min_images=min_images,
        split_seed=split_seed, on_corrupt=on_corrupt, overlap=overlap,
    )
