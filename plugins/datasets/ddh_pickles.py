"""``ytf-ddh`` and ``facescrub-ddh``: the DDH authors' preprocessed pickles.

Each file holds ``(x, y)``: x float (N, 3072) laid out CHW (3 x 32 x 32), y an integer
identity. YouTube Faces: ``train_vec_folder_32_32`` / ``test_vec_folder_32_32`` (1,595
identities, 63,800 / 7,975 images); FaceScrub: ``train_folder_facescrub`` /
``test_folder_facescrub`` (530 identities, 67,177 / 2,650). ``--data-root`` names the
folder holding the two, each either one file (with or without a ``.pkl``/``.pickle``
suffix) or, as the authors' loader reads them, a folder of that name whose files are
read in sorted name order and stacked (``np.vstack`` of the x, ``np.hstack`` of the y).
Both layouts give the same images, labels and split checksum for the same content.

Split: the test file is the query set; ``val`` (5) images per identity are carved from
the train file with ``split_seed``; the rest is the gallery. Deviation: the papers use
the whole train file as gallery; ``val=0`` restores that (then no validation split).
Pixels are stored as uint8: exact for integer pixel values, otherwise rounded (the
conversion is recorded in ``meta['pixel_range']``). Normalisation is a protocol setting:
``--set protocol.normalisation=legacy-ddh`` is the released code's per-split
``clip(0.1 (x - mean) / (std + 1e-5), -1, 1)``, ``channel-mean-std`` (default) the modern
per-channel statistics of the training split.

Safety: pickles from the internet can run code when loaded. :func:`safe_load` admits
only what the format needs (numpy arrays, dtypes and scalars, numbers, tuples, lists)
and refuses anything else, naming the file, before anything is called; no array it asks
numpy to allocate may be larger than the file itself.
"""

from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.api.errors import BenchError
from bench.data.cache import sha256_file
from bench.data.faces import QUERY, FaceData, per_identity_split
from plugins.datasets.arrays import to_uint8
from plugins.datasets.assemble import ImagePool, finish
from plugins.datasets.imagefiles import require_root

SUFFIXES = ("", ".pkl", ".pickle", ".p")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of bytes use it, restricted to latin-1."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin-1")


def _allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    from numpy._core import multiarray, numeric

    for package in ("numpy.core", "numpy._core"):  # names written by numpy 1.x and 2.x
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in :func:`_allowed`; anything else is refused. Every array
    the pickle asks numpy to allocate is bounded by ``limit`` bytes (what the file can hold:
    a genuine pickle carries its arrays' bytes, so a larger request is a crafted file);
    arrays filled from the file's own bytes are bounded by the file already."""

    ALLOWED = _allowed()

    def __init__(self, file: Any, source: str, limit: int) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 pickles hold array bytes as str
        self.source = source
        self.limit = limit

    def _bounded(self, shape: Any, dtype: Any) -> None:
        """Refuse an allocation of ``shape`` x ``dtype`` larger than the file."""
        try:
            dims = [int(d) for d in (shape if isinstance(shape, tuple | list) else (shape,))]
            size = int(np.prod(dims, dtype=object)) * np.dtype(dtype).itemsize
        except (TypeError, ValueError, OverflowError):
            raise BenchError(f"refusing to unpickle {self.source}: an array of shape {shape!r} and dtype {dtype!r}") from None
        if min(dims, default=0) < 0 or size > self.limit:
            raise BenchError(f"refusing to unpickle {self.source}: it asks for an array of {size:,} bytes, "
                             f"more than the file's {self.limit:,} bytes can hold; the file is not a DDH pickle")

    def _ndarray(self, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
        self._bounded(shape, dtype)
        return np.ndarray(shape, dtype, *args, **kwargs)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        self._bounded(shape, dtype)
        from numpy._core import multiarray

        return multiarray._reconstruct(np.ndarray, shape, dtype)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "ndarray"):
            return self._ndarray
        if name == "_reconstruct" and (module, name) in self.ALLOWED:
            return self._reconstruct
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise BenchError(
                f"refusing to unpickle {self.source}: it asks for '{module}.{name}', which the DDH "
                "format never needs (only numpy arrays, dtypes, numbers, tuples and lists are "
                "admitted); the file is not the DDH authors' data or has been tampered with"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise BenchError(f"refusing to unpickle {self.source}: it holds persistent references")


def safe_load(path: Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`."""
    try:
        with path.open("rb") as fh:
            return RestrictedUnpickler(fh, str(path), limit=path.stat().st_size).load()
    except BenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a DDH pickle
        raise BenchError(f"cannot read {path} as a DDH pickle ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Reference:
    """The published files of one data set and their sizes."""

    train_file: str
    test_file: str
    identities: int
    train: int
    test: int
    test_per_identity: int = 5


REFERENCE = {
    "ytf-ddh": Reference("train_vec_folder_32_32", "test_vec_folder_32_32", 1595, 63_800, 7_975),
    "facescrub-ddh": Reference("train_folder_facescrub", "test_folder_facescrub", 530, 67_177, 2_650),
}


def find_sources(dataset: str, root: Path, stem: str) -> list[Path]:
    """The pickles of one split: the file ``stem`` (or ``stem.pkl``, ...), or every file of
    the folder ``stem`` in sorted name order, as the released ``load_data_split_pickle``."""
    folder = root / stem
    if folder.is_dir():
        entries = sorted(folder.iterdir(), key=lambda p: p.name)  # os.listdir + list.sort()
        others = [p.name for p in entries if not p.is_file()]
        if others or not entries:
            raise BenchError(
                f"dataset '{dataset}': the folder {folder} must hold only pickle files "
                f"({'it also holds ' + ', '.join(others[:3]) if others else 'it is empty'}); "
                "the DDH loader reads every file in it"
            )
        return entries
    for suffix in SUFFIXES:
        if (root / (stem + suffix)).is_file():
            return [root / (stem + suffix)]
    raise BenchError(f"dataset '{dataset}': {root} has no file or folder '{stem}' (or {stem}.pkl); --data-root must name the folder with the DDH pickles")


def read_pair(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The checked ``(x, y)`` of one pickle: x (N, 3072) as stored, y (N,)."""
    obj = safe_load(path)
    if not (isinstance(obj, tuple | list) and len(obj) == 2):
        raise BenchError(f"{path}: expected a pickled (x, y) pair, found {type(obj).__name__}")
    for part in obj:  # a list of references to one array would grow many times over in np.asarray
        if isinstance(part, list | tuple) and len(part) and \
                len(part) * np.asarray(part[0]).nbytes > path.stat().st_size:
            raise BenchError(f"{path}: its lists hold more data than the file can; the file is not a DDH pickle")
    x, y = np.asarray(obj[0]), np.asarray(obj[1])
    if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise BenchError(f"{path}: x has shape {x.shape}; the DDH format is (N, 3072), 3x32x32 CHW")
    if y.shape != (len(x),) or y.dtype.kind not in "iuf" or not np.all(y == np.rint(y)):
        raise BenchError(f"{path}: y must hold one integer identity per image (got {y.dtype} {y.shape})")
    return x, y


def read_xy(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, str]:
    """Images (N, 3, 32, 32) uint8, labels (N,) and the pixel conversion of one split's
    pickles, stacked in the order given."""
    pairs = [read_pair(p) for p in paths]
    x = pairs[0][0] if len(pairs) == 1 else np.vstack([pair[0] for pair in pairs])
    y = pairs[0][1] if len(pairs) == 1 else np.hstack([pair[1] for pair in pairs])
    pixels, pixel_range = to_uint8(x, str(paths[0].parent if len(paths) > 1 else paths[0]))
    return pixels.reshape(-1, 3, 32, 32), y.astype(np.int64), pixel_range


def check_sizes(dataset: str, ref: Reference, train_y: np.ndarray, test_y: np.ndarray) -> None:
    """Refuse pickles whose sizes differ from the published ones.

    >>> ref = Reference("a", "b", identities=2, train=4, test=2, test_per_identity=1)
    >>> check_sizes("d", ref, np.array([0, 0, 1, 1]), np.array([0, 1]))
    >>> check_sizes("d", ref, np.array([0, 0, 1]), np.array([0, 1]))
    Traceback (most recent call last):
    bench.api.errors.BenchError: dataset 'd': the pickles hold 2 identities with 3 train / 2 test images (1 to 1 test images per identity); the reference is 2 identities, 4 / 2 (1 per identity); use the DDH authors' unmodified files, or accept other files with --set dataset.check_sizes=false
    """
    ids = np.unique(np.concatenate([train_y, test_y]))
    per = np.bincount(np.searchsorted(ids, test_y), minlength=len(ids))
    if (len(ids), len(train_y), len(test_y)) == (ref.identities, ref.train, ref.test) and np.all(per == ref.test_per_identity):
        return
    raise BenchError(
        f"dataset '{dataset}': the pickles hold {len(ids):,} identities with {len(train_y):,} train / "
        f"{len(test_y):,} test images ({per.min()} to {per.max()} test images per identity); the "
        f"reference is {ref.identities:,} identities, {ref.train:,} / {ref.test:,} "
        f"({ref.test_per_identity} per identity); use the DDH authors' unmodified files, or accept "
        "other files with --set dataset.check_sizes=false"
    )


def load_ddh(
    dataset: str, data_root: Path | None, *, val: int, split_seed: int, check_sizes_: bool, overlap: str
) -> FaceData:
    """The shared body of ``ytf-ddh`` and ``facescrub-ddh``."""
    ref = REFERENCE[dataset]
    root = require_root(dataset, data_root, f"the folder with {ref.train_file} and {ref.test_file}")
    sources = [find_sources(dataset, root, ref.train_file), find_sources(dataset, root, ref.test_file)]
    (train_x, train_y, train_range), (test_x, test_y, test_range) = (read_xy(p) for p in sources)
    if check_sizes_:
        check_sizes(dataset, ref, train_y, test_y)
    unseen = np.setdiff1d(test_y, train_y)
    if len(unseen):
        raise BenchError(f"dataset '{dataset}': test identities {unseen[:5].tolist()} have no train images; the two files do not belong together")
    names, labels = np.unique(np.concatenate([train_y, test_y]), return_inverse=True)
    split = np.concatenate([
        per_identity_split(labels[: len(train_y)], val=val, query=0, seed=split_seed),
        np.full(len(test_y), QUERY, dtype=np.int8),
    ])
    pool = ImagePool(np.concatenate([train_x, test_x]), labels.reshape(-1), [str(n) for n in names.tolist()])
    meta = {
        "source": str(root),
        "pixel_range": {"train": train_range, "test": test_range},
        "files": [[p.relative_to(root).as_posix(), sha256_file(p)] for paths in sources for p in paths],
        "files_per_image": False,
        "gallery": "whole train file (as published)" if val == 0 else
                   f"train file minus {val} val images per identity (deviation; val=0 gives the published gallery)",
    }
    return finish(dataset, pool, split, overlap=overlap, meta=meta)


def load_ytf_ddh(
    data_root: Path | None = None, val: int = 5, split_seed: int = 0, check_sizes: bool = True, overlap: str = "refuse"
) -> FaceData:
    """YouTube Faces from the DDH pickles (1,595 ids, 63,800 train / 7,975 query)."""
    return load_ddh("ytf-ddh", data_root, val=val, split_seed=split_seed, check_sizes_=check_sizes, overlap=overlap)


def load_facescrub_ddh(
    data_root: Path | None = None, val: int = 5, split_seed: int = 0, check_sizes: bool = True, overlap: str = "refuse"
) -> FaceData:
    """FaceScrub from the DDH pickles (530 ids, 67,177 train / 2,650 query)."""
    return load_ddh("facescrub-ddh", data_root, val=val, split_seed=split_seed, check_sizes_=check_sizes, overlap=overlap)
