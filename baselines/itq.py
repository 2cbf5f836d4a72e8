"""Non-learned floors from PCA: ``pca-sign`` and ``pca-itq`` (Gong & Lazebnik, CVPR 2011).

Both centre the training vectors, project them on their top-K principal directions
(fitted on the training split only), and binarise: ``pca-sign`` takes the sign of the
projection; ``pca-itq`` first rotates it by the orthogonal R that Iterative Quantization
finds by alternating ``B = sign(V R)`` and the orthogonal Procrustes solution
``R = argmin ||B - V R||_F`` (SVD of ``B^T V``), from a seeded random rotation, for 50
iterations as in the authors' code. Each half-step cannot increase the quantization
loss ``||B - V R||_F^2``.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from bench.api.errors import BenchError
from bench.api.methods import Encoder, FittedMethod, StrictModel
from bench.evaluation.codes import sign_codes


def pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and top-``k`` principal directions (D, k) of ``x`` (N, D), float64.

    Each direction's sign is fixed so that its largest-magnitude entry is positive.

    >>> x = np.array([[0.0, 0.0], [2.0, 0.1], [4.0, -0.1]])
    >>> mean, w = pca(x, 1)
    >>> mean.round(3).tolist(), w.round(3).ravel().tolist()
    ([2.0, 0.0], [1.0, -0.025])
    """
    n, d = x.shape
    if not 1 <= k <= min(n, d):
        raise BenchError(
            f"PCA to {k} dims needs at least {k} training vectors of at least {k} dims, "
            f"got {n} x {d}; use fewer bits"
        )
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    w = vt[:k].T
    w *= np.sign(w[np.abs(w).argmax(axis=0), np.arange(k)])
    return mean, w


def itq(v: np.ndarray, iterations: int, seed: int) -> tuple[np.ndarray, list[float]]:
    """Iterative Quantization of projected data ``v`` (N, K): the rotation R (K, K) and the
    quantization loss ``||sign(V R) - V R||_F^2`` before each update and after the last.

    >>> v = np.random.default_rng(0).standard_normal((200, 4))
    >>> r, losses = itq(v, 20, seed=0)
    >>> bool(np.allclose(r @ r.T, np.eye(4))), bool(losses[-1] <= losses[0])
    (True, True)
    """
    k = v.shape[1]
    u, _, _ = np.linalg.svd(np.random.default_rng(seed).standard_normal((k, k)))
    r = u  # a random orthogonal start, as in the authors' code
    losses = []
    for _ in range(iterations):
        z = v @ r
        b = sign_codes(z).astype(np.float64)
        losses.append(float(np.sum((b - z) ** 2)))
        ub, _, uat = np.linalg.svd(b.T @ v)  # Procrustes: R = argmax tr(B^T V R) = UA UB^T
        r = uat.T @ ub.T
    z = v @ r
    losses.append(float(np.sum((sign_codes(z).astype(np.float64) - z) ** 2)))
    return r, losses


class PCASignConfig(StrictModel):
    """PCA-sign has no hyperparameters."""


class PCAITQConfig(StrictModel):
    """ITQ iterations (the authors' code: 50)."""

    iterations: int = Field(50, ge=0)


class PCASign(FittedMethod):
    """Sign of the top-K PCA projection of the centred training vectors: a non-learned floor."""

    Config = PCASignConfig

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel) -> Encoder:
        mean, w = pca(x, bits)
        return lambda v: ((np.asarray(v, np.float64) - mean) @ w).astype(np.float32)


class PCAITQ(FittedMethod):
    """PCA to K dims + Iterative Quantization (Gong & Lazebnik 2011): the classic unsupervised floor."""

    Config = PCAITQConfig

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: PCAITQConfig) -> Encoder:
        mean, w = pca(x, bits)
        r, _ = itq((np.asarray(x, np.float64) - mean) @ w, config.iterations, seed)
        wr = w @ r
        return lambda v: ((np.asarray(v, np.float64) - mean) @ wr).astype(np.float32)
