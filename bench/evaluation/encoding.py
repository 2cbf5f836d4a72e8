"""Encode images with a trained model, batched on its device: relaxed codes ``u`` and binary
codes in {-1, +1}, computed on the device so that only the result crosses back to the host
(once, not per batch)."""

from __future__ import annotations

import numpy as np
import torch

from bench.data.preprocess import Normaliser
from bench.evaluation.codes import sign_codes


@torch.no_grad()
def encode_relaxed(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    normaliser: Normaliser,
    part: int,
    device: torch.device,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Relaxed codes ``u`` (N, K) float32 on ``device`` for uint8 images of split ``part``
    (eval mode). ``images`` may already be on the device (the training set usually is)."""
    was_training = model.training
    model.eval()
    source = torch.as_tensor(images)
    chunks = []
    try:
        for start in range(0, len(source), batch_size):
            batch = source[start : start + batch_size].to(device, non_blocking=True)
            chunks.append(model(normaliser.apply(batch, part))["u"].float())
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros((0, 0), device=device)


def encode_codes(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    normaliser: Normaliser,
    part: int,
    device: torch.device,
    batch_size: int = 1024,
) -> np.ndarray:
    """Binary codes of uint8 images: (N, K) int8 in {-1, +1} (sign(0) = +1), signed on the device."""
    return sign_codes(encode_relaxed(model, images, normaliser, part, device, batch_size)).cpu().numpy()
