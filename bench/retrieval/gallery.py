"""The images behind a run's codes, for showing search results: the run's dataset loaded
again as the run saw it (its stored protocol and data root), checked against the run's split
checksum, and its images as PNG thumbnails."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import yaml
from PIL import Image

from bench.api.errors import BenchError
from bench.api.pluginhost import default_host
from bench.config.protocol import ProtocolConfig
from bench.data.loading import dataset_for
from bench.retrieval.runs import RunHandle
from bench.tracking import tags as T


@dataclass
class RunImages:
    """The dataset images of a run, by image id (position in the dataset)."""

    images: np.ndarray  # (N, C, H, W) uint8

    def thumbnail(self, image_id: int, size: int = 96) -> bytes:
        """Image ``image_id`` as a PNG of ``size`` x ``size`` (nearest-neighbour: pixels stay visible)."""
        if not 0 <= image_id < len(self.images):
            raise BenchError(f"no image {image_id}; ids run from 0 to {len(self.images) - 1}")
        pixels = self.images[image_id]
        picture = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
        buffer = io.BytesIO()
        picture.resize((size, size), Image.Resampling.NEAREST).save(buffer, format="PNG")
        return buffer.getvalue()


def run_images(handle: RunHandle) -> RunImages:
    """The run's dataset at its input size; a one-line error when it is not the data the
    run was trained and evaluated on."""
    path = handle.reader.download(handle.run_id, "config.yaml", handle.folder)
    spec = yaml.safe_load(path.read_text())
    data = dataset_for(default_host(), ProtocolConfig.model_validate(spec["protocol"]), spec.get("data_root"))
    expected = handle.run.data.tags.get(T.SPLIT_CHECKSUM)
    if expected and data.checksum() != expected:
        raise BenchError(f"the dataset of run '{handle.name}' has changed since it ran (split checksum "
                         f"{data.checksum()}, the run's {expected}); re-run it to show its images")
    return RunImages(data.images)
