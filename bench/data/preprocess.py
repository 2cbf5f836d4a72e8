"""Turn uint8 image batches into model inputs: resizing, normalisation, augmentation.

Normalisation statistics come from the training split only (``channel-mean-std``), or
per split as the DDH/DCBH released code does (``legacy-ddh``: each split normalised by
its own global scalar mean/std, ``clip(0.1 (x - mean) / (std + 1e-5), -1, 1)``).
Statistics are exact (from pixel-value histograms). Batches are prepared on whatever
device they are on: augmentation acts on the uint8 pixels, then normalisation writes one
float32 tensor in place, with the same operations in the same order as torchvision's
``ToTensor`` + ``Normalize`` (so the results are bit-identical).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.faces import TRAIN


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
        self._on_device: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        if kind == "channel-mean-std":
            mean, var = pixel_moments(images[split == TRAIN], per_channel=True)
            stats = (torch.tensor(mean / 255.0, dtype=torch.float32),
                     torch.tensor(np.sqrt(var) / 255.0 + 1e-8, dtype=torch.float32))
            self.stats = {part: stats for part in np.unique(split).tolist()}
        elif kind == "legacy-ddh":
            for part in np.unique(split).tolist():
                mean, var = pixel_moments(images[split == part], per_channel=False)
                self.stats[part] = (torch.tensor(mean, dtype=torch.float32),
                                    torch.tensor(np.sqrt(var) + 1e-5, dtype=torch.float32))

    def _device_stats(self, part: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (part, device)
        if key not in self._on_device:
            mean, std = self.stats[part]
            self._on_device[key] = (mean.view(1, -1, 1, 1).to(device), std.view(1, -1, 1, 1).to(device))
        return self._on_device[key]

    def apply(self, batch: torch.Tensor, part: int = TRAIN) -> torch.Tensor:
        """Normalise a uint8 batch (N, C, H, W) that belongs to split ``part`` (one new
        float32 tensor, in the batch's memory format)."""
        x = batch.float()
        if self.kind == "unit":
            return x.div_(255.0)
        mean, std = self._device_stats(part, x.device)
        if self.kind == "channel-mean-std":
            return x.div_(255.0).sub_(mean).div_(std)
        return x.sub_(mean).mul_(0.1).div_(std).clamp_(-1.0, 1.0)


def pixel_moments(images: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance of uint8 pixel values, per channel or over all, from
    value histograms: exact, and with no float copy of the images.

    >>> x = np.array([[[[0, 255]], [[10, 20]]]], dtype=np.uint8)  # (1, 2, 1, 2)
    >>> [v.tolist() for v in pixel_moments(x, per_channel=True)]
    [[127.5, 15.0], [16256.25, 25.0]]
    """
    x = torch.from_numpy(np.ascontiguousarray(images))
    rows = [x[:, c] for c in range(x.shape[1])] if per_channel else [x]
    values = np.arange(256, dtype=np.float64)
    hist = np.stack([torch.bincount(r.flatten(), minlength=256).numpy() for r in rows]).astype(np.float64)
    n = hist.sum(axis=1)
    mean = hist @ values / n
    var = (hist * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
    return (mean, var) if per_channel else (mean[:1], var[:1])


def augment(batch: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Batch augmentation on the batch's device: ``none`` or ``flip`` (random horizontal).
    The draws come from ``generator`` (on the CPU); on CUDA the mask goes through pinned
    memory, since a copy from pageable memory would wait for the device."""
    if kind == "none":
        return batch
    flip = torch.rand(batch.shape[0], generator=generator) < 0.5
    if batch.device.type == "cuda":
        flip = flip.pin_memory()
    flip = flip.to(batch.device, non_blocking=True).view(-1, 1, 1, 1)
    return torch.where(flip, batch.flip(-1), batch)


def prepare_batch(
    images: torch.Tensor,
    normaliser: Normaliser,
    part: int = TRAIN,
    *,
    augmentation: str = "none",
    generator: torch.Generator | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """A uint8 batch on its device -> the model's float32 input: augmentation on the uint8
    pixels (a quarter of the bytes; equal to flipping after normalising, which acts per
    channel), the memory format, then normalisation."""
    x = augment(images, augmentation, generator)
    if memory_format != torch.contiguous_format:
        x = x.contiguous(memory_format=memory_format)
    return normaliser.apply(x, part)
