"""Turn uint8 image batches into model inputs: resizing, normalisation, augmentation.

Normalisation statistics come from the training split only (``channel-mean-std``);
plugins add other normalisations (:class:`Normaliser` subclasses, hook
``register_normalisers``). Statistics are exact (from pixel-value histograms). Batches are
prepared on whatever device they are on: augmentation acts on the uint8 pixels, then
normalisation writes one float32 tensor in place, with the same operations in the same
order as torchvision's ``ToTensor`` + ``Normalize`` (so the results are bit-identical).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.faces import TRAIN

#: Statistics per split part: (mean, std) tensors, one value per channel or one in all.
Stats = dict[int, tuple[torch.Tensor, torch.Tensor]]


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, C, H, W) uint8 images to ``size`` x ``size`` (bilinear, antialiased)."""
    if images.shape[2:] == (size, size):
        return images
    x = torch.from_numpy(np.asarray(images, dtype=np.float32))  # a new array: a read-only input is fine
    out = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


class Normaliser(ABC):
    """Fitted normalisation: :meth:`fit` computes statistics from the images, :meth:`apply`
    maps a uint8 batch of one split, on any device, to float32 with :meth:`transform`.

    Built-in kinds: :class:`ChannelMeanStd` (``channel-mean-std``) and :class:`UnitScale`
    (``unit``). A plugin adds a kind with a subclass that passes its name to
    ``super().__init__`` and implements :meth:`fit` and :meth:`transform`.
    """

    def __init__(self, kind: str, images: np.ndarray, split: np.ndarray) -> None:
        self.kind = kind
        self._on_device: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        self.stats = self.fit(images, split)

    @abstractmethod
    def fit(self, images: np.ndarray, split: np.ndarray) -> Stats:
        """The statistics of this kind for every split part (may be none)."""

    @abstractmethod
    def transform(self, x: torch.Tensor, part: int) -> torch.Tensor:
        """Normalise float32 pixel values ``x`` (0..255) of split ``part``, in place."""

    def device_stats(self, part: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of split ``part`` shaped (1, C, 1, 1) on ``device`` (copied there once)."""
        key = (part, device)
        if key not in self._on_device:
            mean, std = self.stats[part]
            self._on_device[key] = (mean.view(1, -1, 1, 1).to(device), std.view(1, -1, 1, 1).to(device))
        return self._on_device[key]

    def apply(self, batch: torch.Tensor, part: int = TRAIN) -> torch.Tensor:
        """Normalise a uint8 batch (N, C, H, W) that belongs to split ``part`` (one new
        float32 tensor, in the batch's memory format)."""
        return self.transform(batch.float(), part)


class ChannelMeanStd(Normaliser):
    """Per-channel mean and std of the training split, on pixels scaled to [0, 1]."""

    def __init__(self, images: np.ndarray, split: np.ndarray) -> None:
        super().__init__("channel-mean-std", images, split)

    def fit(self, images: np.ndarray, split: np.ndarray) -> Stats:
        mean, var = pixel_moments(images[split == TRAIN], per_channel=True)
        stats = (torch.tensor(mean / 255.0, dtype=torch.float32),
                 torch.tensor(np.sqrt(var) / 255.0 + 1e-8, dtype=torch.float32))
        return {part: stats for part in np.unique(split).tolist()}

    def transform(self, x: torch.Tensor, part: int) -> torch.Tensor:
        mean, std = self.device_stats(part, x.device)
        return x.div_(255.0).sub_(mean).div_(std)


class UnitScale(Normaliser):
    """Pixels / 255."""

    def __init__(self, images: np.ndarray, split: np.ndarray) -> None:
        super().__init__("unit", images, split)

    def fit(self, images: np.ndarray, split: np.ndarray) -> Stats:
        return {}

    def transform(self, x: torch.Tensor, part: int) -> torch.Tensor:
        return x.div_(255.0)


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
