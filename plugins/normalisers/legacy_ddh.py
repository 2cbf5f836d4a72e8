"""``legacy-ddh``: the input normalisation of the released DDH/DCBH code.

Each split is normalised by its own global scalar mean and std (not the training
split's): ``clip(0.1 (x - mean) / (std + 1e-5), -1, 1)`` on 0..255 pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.data.preprocess import Normaliser, Stats, pixel_moments


class LegacyDDHNormaliser(Normaliser):
    """Per split, its own global mean/std: ``clip(0.1 (x - mean) / (std + 1e-5), -1, 1)``, as the
    released DDH/DCBH code.

    >>> images = np.array([[[[0, 100]]], [[[50, 250]]]], dtype=np.uint8)  # two 1x1x2 images
    >>> n = LegacyDDHNormaliser(images, np.array([0, 2]))
    >>> [round(float(v), 4) for v in n.apply(torch.from_numpy(images[1:]), 2).flatten()]
    [-0.1, 0.1]
    """

    def __init__(self, images: np.ndarray, split: np.ndarray) -> None:
        super().__init__("legacy-ddh", images, split)

    def fit(self, images: np.ndarray, split: np.ndarray) -> Stats:
        stats = {}
        for part in np.unique(split).tolist():
            mean, var = pixel_moments(images[split == part], per_channel=False)
            stats[part] = (torch.tensor(mean, dtype=torch.float32),
                           torch.tensor(np.sqrt(var) + 1e-5, dtype=torch.float32))
        return stats

    def transform(self, x: torch.Tensor, part: int) -> torch.Tensor:
        mean, std = self.device_stats(part, x.device)
        return x.sub_(mean).mul_(0.1).div_(std).clamp_(-1.0, 1.0)
