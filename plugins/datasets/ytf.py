"""``ytf``: YouTube Faces from the raw aligned frames, ``aligned_images_DB/<person>/<video>/*.jpg``.

Two protocols (option ``protocol``):

* ``frames`` (DDH-like): ``train`` (40) + ``query`` (5) random frames per person from all
  of the person's videos. Frames of one video are near-duplicates, so this split leaks.
* ``videos``: the query frames come from one seeded video of the person, the train frames
  from the person's other videos, so no query has a near-duplicate in the gallery. People
  with a single video are reported and excluded.

In both, ``val`` (5) validation frames are carved from the ``train`` frames (validation
only picks models, so it may share videos with train), the remaining ``train - val`` are
the gallery. People with too few frames are reported and excluded. Each person's draw is
seeded by ``split_seed`` and the person's name, so it does not depend on who else is in
the folder. Only the chosen frames are decoded.

Face crop: the centred square of side ``crop`` (0.5) x the frame's shorter side, then a
resize to ``size`` x ``size``. The aligned frames show the face centred with a margin;
0.5 is our assumption of a tight face box, not a published value; ``crop=1.0`` keeps the
whole frame. ``align="dlib"``: dlib's face chips of the whole frames instead
(:mod:`plugins.datasets.face_align`).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from bench.api.errors import BenchError
from bench.data.faces import QUERY, TRAIN, VAL, FaceData
from bench.data.integrity import check_choice, handle_corrupt, log
from plugins.datasets.assemble import ImagePool, finish
from plugins.datasets.face_align import check_align
from plugins.datasets.imagefiles import image_files, read_images, relative, require_root, subdirs

PROTOCOLS = ("frames", "videos")


def frames_root(root: Path) -> Path:
    """``root/aligned_images_DB`` when present, else ``root`` itself."""
    inner = root / "aligned_images_DB"
    return inner if inner.is_dir() else root


def choose_frames(
    videos: list[list[Path]], protocol: str, *, train: int, query: int, val: int, rng: np.random.Generator
) -> tuple[list[Path], list[int]] | str:
    """The chosen frames of one person and their split parts, or why the person is excluded.

    >>> rng = np.random.default_rng(0)
    >>> frames, parts = choose_frames([[Path("a")] * 4, [Path("b")] * 3], "videos", train=3, query=2, val=1, rng=rng)
    >>> sorted(parts), {f.name for f, p in zip(frames, parts) if p == 2} != {f.name for f, p in zip(frames, parts) if p != 2}
    ([0, 0, 1, 2, 2], True)
    >>> choose_frames([[Path("a")] * 4], "videos", train=3, query=2, val=1, rng=rng)
    '1 video, the videos protocol needs 2'
    """
    if protocol == "frames":
        pool = [f for video in videos for f in video]
        if len(pool) < train + query:
            return f"{len(pool)} frames, the protocol needs {train + query}"
        order = rng.permutation(len(pool))
        queries, trains = [pool[i] for i in order[:query]], [pool[i] for i in order[query : query + train]]
    else:
        if len(videos) < 2:
            return f"{len(videos)} video, the videos protocol needs 2"
        held = int(rng.integers(len(videos)))
        rest = [f for k, video in enumerate(videos) if k != held for f in video]
        if len(videos[held]) < query or len(rest) < train:
            return (f"query video has {len(videos[held])} frames (needs {query}), other videos "
                    f"{len(rest)} (need {train})")
        queries = [videos[held][i] for i in rng.permutation(len(videos[held]))[:query]]
        trains = [rest[i] for i in rng.permutation(len(rest))[:train]]
    parts = [QUERY] * len(queries) + [VAL] * val + [TRAIN] * (len(trains) - val)
    return queries + trains, parts


def load_ytf(
    data_root: Path | None = None,
    protocol: str = "frames",
    train: int = 40,
    query: int = 5,
    val: int = 5,
    size: int = 32,
    crop: float = 0.5,
    split_seed: int = 0,
    on_corrupt: str = "skip",
    overlap: str = "refuse",
    align: str = "none",
) -> FaceData:
    """YouTube Faces raw aligned frames; protocol frames (40 train/5 query per person) or videos."""
    check_choice("ytf", "protocol", protocol, PROTOCOLS)
    check_align("ytf", align)
    if query < 1 or not 0 <= val < train:
        raise BenchError(f"dataset 'ytf': need query >= 1 and 0 <= val < train (got train={train}, query={query}, val={val})")
    given = require_root("ytf", data_root, "the YouTube Faces folder aligned_images_DB")
    root = frames_root(given)
    paths, parts, owner, people, excluded = [], [], [], [], {}
    for person in subdirs(root):
        videos = [files for files in (image_files(v) for v in subdirs(person)) if files]
        rng = np.random.default_rng([split_seed, zlib.crc32(person.name.encode())])
        chosen = choose_frames(videos, protocol, train=train, query=query, val=val, rng=rng)
        if isinstance(chosen, str):
            excluded[person.name] = chosen
            continue
        paths.extend(chosen[0])
        parts.extend(chosen[1])
        owner.extend([len(people)] * len(chosen[0]))
        people.append(person.name)
    if not people:
        raise BenchError(f"dataset 'ytf': no person under {root} has enough frames for protocol '{protocol}'; expected <person>/<video>/*.jpg")
    read = read_images(paths, given, size=size, crop=crop, align=align)  # paths are named relative to --data-root
    handle_corrupt("ytf", read.corrupt, on_corrupt)
    pool = ImagePool(read.images, np.asarray(owner, dtype=np.int64)[read.index], people,
                     [relative(paths[k], given) for k in read.index], read.sha256)
    split = np.asarray(parts, dtype=np.int8)[read.index]
    for part in (TRAIN, QUERY):  # corrupt frames can empty a person's train or query part
        present = np.bincount(pool.labels[split == part], minlength=len(people)) > 0
        for label in np.flatnonzero(~present):
            excluded[people[label]] = "its train or query frames are all corrupt"
    pool_keep = ~np.isin(np.asarray(people)[pool.labels], list(excluded))
    pool, split = pool.take(pool_keep), split[pool_keep]
    if excluded:
        log.warning("dataset 'ytf': excluded %d person(s): %s", len(excluded),
                    "; ".join(f"{k}: {v}" for k, v in list(excluded.items())[:3]))
    meta = {"source": str(root), "protocol": protocol, "excluded_identities": excluded,
            "corrupt": [list(c) for c in read.corrupt], **read.meta}
    return finish("ytf", pool, split, overlap=overlap, meta=meta)
