"""``caffe-mean-image``: the input of the released DSH Caffe code.

Its ``Data`` layer's ``transform_param { mean_file: "CIFAR-10/mean.binaryproto" }``
subtracts the training set's mean image (Caffe's ``compute_image_mean``: the per-pixel,
per-channel mean over every training image) from the raw 0-255 pixels, with no scaling;
the test phase subtracts the same training mean.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.data.faces import TRAIN
from bench.data.preprocess import Normaliser, Stats


class CaffeMeanImageNormaliser(Normaliser):
    """Raw 0-255 pixels minus the training split's mean image, for every split.

    >>> images = np.array([[[[0, 100]]], [[[50, 250]]], [[[9, 9]]]], dtype=np.uint8)  # 1x1x2 images
    >>> n = CaffeMeanImageNormaliser(images, np.array([0, 0, 2]))
    >>> n.apply(torch.from_numpy(images[2:]), 2).flatten().tolist()
    [-16.0, -166.0]
    """

    def __init__(self, images: np.ndarray, split: np.ndarray) -> None:
        self._device_mean: dict[torch.device, torch.Tensor] = {}
        super().__init__("caffe-mean-image", images, split)

    def fit(self, images: np.ndarray, split: np.ndarray) -> Stats:
        train = images[split == TRAIN]
        mean = np.zeros(images.shape[1:], dtype=np.float64)
        for start in range(0, len(train), 4096):  # no float copy of the whole set
            mean += train[start:start + 4096].sum(axis=0, dtype=np.float64)
        self.mean_image = torch.from_numpy((mean / max(len(train), 1)).astype(np.float32))
        return {}

    def transform(self, x: torch.Tensor, part: int) -> torch.Tensor:
        if x.device not in self._device_mean:
            self._device_mean[x.device] = self.mean_image.to(x.device)
        return x.sub_(self._device_mean[x.device])  # (C, H, W) broadcast over the batch
