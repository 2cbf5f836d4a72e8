"""``dlib-rgb``: the input of dlib's face-recognition network (``input_rgb_image_sized``).

Each channel's pixel value (0-255) minus a fixed mean (R 122.782, G 117.001, B 104.298,
the values stored in ``dlib_face_recognition_resnet_model_v1.dat``), divided by 256; the
same for every split, nothing fitted on the data.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.data.preprocess import Normaliser, Stats

MEANS = (122.782, 117.001, 104.298)


class DlibRGBNormaliser(Normaliser):
    """``(pixel - mean[c]) / 256`` with dlib's fixed per-channel means.

    >>> images = np.full((2, 3, 1, 1), 128, dtype=np.uint8)
    >>> n = DlibRGBNormaliser(images, np.array([0, 2]))
    >>> [round(v, 6) for v in n.apply(torch.from_numpy(images[:1]), 0).flatten().tolist()]
    [0.020383, 0.042965, 0.092586]
    """

    def __init__(self, images: np.ndarray, split: np.ndarray) -> None:
        self._device_means: dict[torch.device, torch.Tensor] = {}
        super().__init__("dlib-rgb", images, split)

    def fit(self, images: np.ndarray, split: np.ndarray) -> Stats:
        return {}

    def transform(self, x: torch.Tensor, part: int) -> torch.Tensor:
        if x.device not in self._device_means:
            self._device_means[x.device] = torch.tensor(MEANS, device=x.device).view(1, 3, 1, 1)
        return x.sub_(self._device_means[x.device]).div_(256.0)
