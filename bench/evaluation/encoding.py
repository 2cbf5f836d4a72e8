"""Encode images with a trained model, batched on its device: relaxed codes ``u``, binary
codes in {-1, +1} and their bit-packed form, computed on the device so that only the
result crosses back to the host (once, not per batch)."""

from __future__ import annotations

import numpy as np
import torch

from bench.data.preprocess import Normaliser


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
    *,
    packed: bool = False,
) -> np.ndarray:
    """Binary codes of uint8 images: (N, K) int8 in {-1, +1} (sign(0) = +1), or with
    ``packed`` (N, ceil(K/8)) uint8 as :func:`bench.evaluation.codes.pack_codes` stores them; the sign
    and the packing run on the device."""
    codes = sign_tensor(encode_relaxed(model, images, normaliser, part, device, batch_size))
    return (pack_tensor(codes) if packed else codes).cpu().numpy()


def sign_tensor(u: torch.Tensor) -> torch.Tensor:
    """Sign with sign(0) = +1, as int8 (on ``u``'s device).

    >>> sign_tensor(torch.tensor([[-0.5, 0.0, 2.0]])).tolist()
    [[-1, 1, 1]]
    """
    return torch.where(u >= 0, 1, -1).to(torch.int8)


def pack_tensor(codes: torch.Tensor) -> torch.Tensor:
    """Pack (N, K) codes in {-1, +1} into (N, ceil(K/8)) uint8 on their device: bit = 1 for
    +1, most significant bit first, zero padding; equal to ``np.packbits(codes > 0, axis=1)``.

    >>> pack_tensor(torch.tensor([[1, -1, 1, 1, -1, -1, -1, 1, 1, -1]])).tolist()
    [[177, 128]]
    """
    n, k = codes.shape
    bits = torch.zeros((n, -(-k // 8) * 8), dtype=torch.uint8, device=codes.device)
    bits[:, :k] = (codes > 0).to(torch.uint8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=codes.device)
    return (bits.view(n, -1, 8) * weights).sum(dim=-1, dtype=torch.uint8)
