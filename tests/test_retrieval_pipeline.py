"""The input pipeline a run stores for new images (bench.data.imagefile) against the dataset
loaders' own steps."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.api.errors import BenchError
from bench.data.imagefile import InputPipeline, decode_image, pipeline_for
from bench.data.preprocess import resize_uint8


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_grey_file_is_decoded_as_orl_loads_its_images():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (112, 92), dtype=np.uint8)  # ORL's native size
    expected = np.repeat(resize_uint8(grey[None, None], 32), 3, axis=1)[0]  # plugins/datasets/orl.py's steps
    got = decode_image(png(grey), InputPipeline(32, 3, grey=True))
    np.testing.assert_array_equal(got, expected)
    colour = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cropped = decode_image(png(colour), InputPipeline(16, 3, grey=False, crop=0.5))
    np.testing.assert_array_equal(cropped, resize_uint8(colour[10:30, 20:40].transpose(2, 0, 1)[None], 16)[0])


def test_alignment_and_bad_files_are_one_line_errors():
    aligned = InputPipeline(32, 3, grey=False, align="dlib")
    face = png(np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(BenchError, match="aligns faces \\(dlib\\).*--aligned"):
        decode_image(face, aligned, "face.png")
    assert decode_image(face, aligned, "face.png", aligned=True).shape == (3, 32, 32)
    with pytest.raises(BenchError, match="notes.txt is not an image"):
        decode_image(b"plain text", InputPipeline(32, 3, grey=True), "notes.txt")


def test_the_pipeline_records_the_dataset_options_it_ran_with():
    x = np.zeros((2, 3, 8, 8), np.uint8)
    x[1, 1] = 7  # channels differ: colour

    def factory(data_root=None, crop=0.9, align="none"):
        return None

    assert pipeline_for(x, factory, {"align": "dlib"}) == InputPipeline(8, 3, grey=False, crop=0.9, align="dlib")
    restored = InputPipeline.from_dict({"size": 8, "channels": 3, "grey": False, "crop": 1.0})  # stored before align
    assert restored.align == "none"
