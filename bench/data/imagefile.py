"""A new face image as a run's model sees it: the input pipeline of the dataset it was trained
on (grey or colour, the dataset's centred crop, the protocol's input size), stored with the
run's model so that any image file can be encoded as the run's own images were.

The pipeline: decode (Pillow), convert to grey (``L``, replicated to the model's channels)
when the dataset's images are grey, else RGB; cut the centred square of side ``crop`` x the
shorter side (the ``crop`` option of datasets that have one; 1.0 keeps the whole image);
resize to ``size`` x ``size`` with the harness's resize (:func:`bench.data.preprocess.resize_uint8`,
as ORL's loader does). Datasets that resize with Pillow first (``folder``, ``facescrub``,
``ytf``) are matched up to that one resize. A dataset built with a face alignment
(``align=dlib``: dlib's 5-point chips) records it; new images for such a run must be chips
aligned the same way (the alignment lives in the dataset plugin, which the core does not call).
"""

from __future__ import annotations

import inspect
import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.api.errors import BenchError
from bench.data.preprocess import resize_uint8


@dataclass(frozen=True)
class InputPipeline:
    """How an image file becomes a model input: ``channels`` x ``size`` x ``size`` uint8."""

    size: int
    channels: int
    grey: bool  # the dataset's images are grey (one value replicated over the channels)
    crop: float = 1.0  # side of the centred square, as a fraction of the shorter side
    align: str = "none"  # the dataset's face alignment (its ``align`` option, e.g. dlib's 5-point chips)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InputPipeline:
        return cls(int(values["size"]), int(values["channels"]), bool(values["grey"]), float(values["crop"]),
                   str(values.get("align", "none")))


def pipeline_for(images: np.ndarray, dataset_factory: Any, dataset_options: dict[str, Any]) -> InputPipeline:
    """The input pipeline of ``images`` (N, C, S, S) uint8, a run's model inputs (at the
    protocol's input size), with the dataset's crop and alignment from its options or the
    factory's defaults.

    >>> x = np.repeat(np.arange(8, dtype=np.uint8).reshape(2, 1, 2, 2), 3, axis=1)
    >>> pipeline_for(x, lambda data_root=None, crop=0.8: None, {})
    InputPipeline(size=2, channels=3, grey=True, crop=0.8, align='none')
    """
    channels, height, width = images.shape[1:]
    if height != width:
        raise BenchError(f"model inputs of {height}x{width}; the input pipeline needs square images")
    grey = channels == 1 or bool(all(np.array_equal(images[:, 0], images[:, c]) for c in range(1, channels)))
    crop = option(dataset_factory, dataset_options, "crop", 1.0)
    align = option(dataset_factory, dataset_options, "align", "none")
    return InputPipeline(int(height), int(channels), grey, float(crop), str(align))


def option(factory: Any, options: dict[str, Any], name: str, default: Any) -> Any:
    """A dataset option as the run used it: given, else the factory's default, else ``default``.

    >>> option(lambda crop=0.5: None, {}, "crop", 1.0), option(lambda: None, {"crop": 0.8}, "crop", 1.0)
    (0.5, 0.8)
    """
    if name in options:
        return options[name]
    parameter = inspect.signature(factory).parameters.get(name)
    return parameter.default if parameter is not None and parameter.default is not inspect.Parameter.empty else default


def crop_box(width: int, height: int, crop: float) -> tuple[int, int, int, int]:
    """Centred square of side ``crop`` x the shorter side, as a PIL box.

    >>> crop_box(320, 240, 0.5)
    (100, 60, 220, 180)
    """
    side = max(1, round(min(width, height) * crop))
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def decode_image(raw: bytes, pipeline: InputPipeline, name: str = "image", aligned: bool = False) -> np.ndarray:
    """Image file bytes -> (channels, size, size) uint8 through ``pipeline``; a file that is
    not an image is a one-line error naming it. A run whose dataset aligns faces takes face
    chips aligned the same way (``aligned``): the alignment itself belongs to the dataset plugin."""
    if pipeline.align != "none" and not aligned:
        raise BenchError(f"{name}: the run's dataset aligns faces ({pipeline.align}) and new images are not aligned "
                         "here yet; give face chips aligned the same way and pass --aligned")
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            picture = im.convert("L" if pipeline.grey else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BenchError(f"{name} is not an image Pillow can read ({type(exc).__name__}); "
                         "give a PNG, JPEG, PGM or another common image file") from None
    if pipeline.crop < 1.0:
        picture = picture.crop(crop_box(*picture.size, pipeline.crop))
    pixels = np.asarray(picture, dtype=np.uint8)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    resized = resize_uint8(pixels[None], pipeline.size)[0]
    if pipeline.grey:
        resized = np.repeat(resized[:1], pipeline.channels, axis=0)
    return np.ascontiguousarray(resized)
