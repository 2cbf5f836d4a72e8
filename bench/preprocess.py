"""Turn uint8 image batches into model inputs: resizing, normalisation, augmentation.

Normalisation statistics come from the training split only (``channel-mean-std``), or
per split as the DDH/DCBH released code does (``legacy-ddh``: each split normalised by
its own global scalar mean/std, ``clip(0.1 (x - mean) / (std + 1e-5), -1, 1)``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.data import TRAIN


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, C, H, W) uint8 images to ``size`` x ``size`` (bilinear, antialiased)."""
    if images.shape[2:] == (size, size):
        return images
    x = torch.from_numpy(images).float()
    out = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


class Normaliser:
    """Fitted normalisation; :meth:`apply` maps a uint8 batch on any device to float32."""

    def __init__(self, kind: str, images: np.ndarray, split: np.ndarray) -> None:
        self.kind = kind
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if kind == "channel-mean-std":
            x = images[split == TRAIN].astype(np.float64) / 255.0
            mean = x.mean(axis=(0, 2, 3))
            std = x.std(axis=(0, 2, 3)) + 1e-8
            stats = (torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32))
            self.stats = {part: stats for part in np.unique(split).tolist()}
        elif kind == "legacy-ddh":
            for part in np.unique(split).tolist():
                x = images[split == part].astype(np.float64)
                self.stats[part] = (
                    torch.tensor([x.mean()], dtype=torch.float32),
                    torch.tensor([x.std() + 1e-5], dtype=torch.float32),
                )

    def apply(self, batch: torch.Tensor, part: int = TRAIN) -> torch.Tensor:
        """Normalise a uint8 batch (N, C, H, W) that belongs to split ``part``."""
        x = batch.float()
        if self.kind == "unit":
            return x / 255.0
        mean, std = (t.to(x.device) for t in self.stats[part])
        if self.kind == "channel-mean-std":
            return (x / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        return torch.clamp(0.1 * (x - mean) / std, -1.0, 1.0)


def augment(batch: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Batch augmentation on the batch's device: ``none`` or ``flip`` (random horizontal)."""
    if kind == "none":
        return batch
    flip = torch.rand(batch.shape[0], generator=generator, device="cpu") < 0.5
    flip = flip.to(batch.device).view(-1, 1, 1, 1)
    return torch.where(flip, batch.flip(-1), batch)
