"""Encode images to relaxed and binary codes with a trained model, batched on its device."""

from __future__ import annotations

import numpy as np
import torch

from bench.preprocess import Normaliser


@torch.no_grad()
def encode_images(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    normaliser: Normaliser,
    part: int,
    device: torch.device,
    batch_size: int = 1024,
) -> np.ndarray:
    """Relaxed codes ``u`` (N, K) float32 for uint8 images of split ``part`` (eval mode)."""
    was_training = model.training
    model.eval()
    source = torch.as_tensor(images)
    chunks = []
    for start in range(0, len(source), batch_size):
        batch = source[start : start + batch_size].to(device, non_blocking=True)
        chunks.append(model(normaliser.apply(batch, part))["u"].float().cpu())
    model.train(was_training)
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
