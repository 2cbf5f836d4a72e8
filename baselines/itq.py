"""Non-learned floors from PCA: ``pca-sign``, ``pca-rr`` and ``pca-itq`` (Gong & Lazebnik, CVPR 2011).

All centre the training vectors, project them on their top-K principal directions
(fitted on the training split only), and binarise: ``pca-sign`` takes the sign of the
projection; ``pca-rr`` first rotates it by a seeded random orthogonal matrix (ITQ's
starting point, no iteration: the "PCA + random rotation + sign" bar of Hashing-Baseline,
2025); ``pca-itq`` first rotates it by the orthogonal R that Iterative Quantization
finds by alternating ``B = sign(V R)`` and the orthogonal Procrustes solution
``R = argmin ||B - V R||_F`` (SVD of ``B^T V``), from a seeded random rotation, for 50
iterations as in the authors' code. Each half-step cannot increase the quantization
loss ``||B - V R||_F^2``.

The PCA is fitted once per training set and process (:func:`principal_directions`, cached
by the data's checksum) and shared by every code length and by both methods: the leading
eigenvectors of the float32 covariance, accumulated in row blocks so no centred copy of
the data is made; projections are computed in float32 blocks too.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import ClassVar

import numpy as np
import scipy.linalg
from pydantic import Field

from bench.api.errors import BenchError
from bench.api.methods import Encoder, FittedMethod, StrictModel
from bench.evaluation.codes import sign_codes

_ROWS = 4096  # rows per block of the covariance and of projections
_DIRECTIONS = 128  # leading directions computed at once (the longest code in use: 48 bits)
# per training set: mean, covariance and the leading directions computed so far
_CACHE: OrderedDict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
_CACHE_SIZE = 2  # training sets kept per process (3072 x 3072 float32 = 38 MB of covariance each)


def principal_directions(x: np.ndarray, k: int = _DIRECTIONS) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and at least the top ``k`` principal directions (D, >= k), float32, by
    decreasing variance, of ``x`` (N, D); cached per process by the checksum of ``x``.

    Only the leading directions are computed (LAPACK's ``syevr`` on an index subset: the top
    ``max(k, 128)``, about a quarter of a full decomposition's time at D = 3072); a later
    call that needs more computes the next ones from the cached covariance and keeps those
    it had, so a code length's directions do not depend on which lengths ran before. Each
    direction's sign is fixed so that its largest-magnitude entry is positive.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    key = f"{x.shape}:{hashlib.sha256(memoryview(x).cast('B')).hexdigest()}"
    if key not in _CACHE:
        mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        cov = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
        for start in range(0, len(x), _ROWS):
            centred = x[start : start + _ROWS] - mean
            cov += centred.T @ centred
        _CACHE[key] = (mean, (cov / max(len(x) - 1, 1)).astype(np.float32), np.empty((x.shape[1], 0), np.float32))
    _CACHE.move_to_end(key)
    mean, cov, w = _CACHE[key]
    if w.shape[1] < k:  # the next directions, leaving those computed before as they were
        d, have = cov.shape[0], w.shape[1]
        m = min(d, max(k, have + _DIRECTIONS))
        _, vectors = scipy.linalg.eigh(cov, subset_by_index=[d - m, d - have - 1], driver="evr")
        more = np.ascontiguousarray(vectors[:, ::-1])
        more *= np.sign(more[np.abs(more).argmax(axis=0), np.arange(more.shape[1])])
        w = np.concatenate([w, more], axis=1)
        _CACHE[key] = (mean, cov, w)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return mean, w


def pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and top-``k`` principal directions (D, k) of ``x`` (N, D), float32
    (from :func:`principal_directions`).

    >>> x = np.array([[0.0, 0.0], [2.0, 0.1], [4.0, -0.1]])
    >>> mean, w = pca(x, 1)
    >>> mean.astype(float).round(3).tolist(), w.astype(float).round(3).ravel().tolist()
    ([2.0, 0.0], [1.0, -0.025])
    """
    n, d = x.shape
    if not 1 <= k <= min(n, d):
        raise BenchError(
            f"PCA to {k} dims needs at least {k} training vectors of at least {k} dims, "
            f"got {n} x {d}; use fewer bits"
        )
    mean, w = principal_directions(x, k)
    return mean, w[:, :k]


def project(v: np.ndarray, mean: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(v - mean) @ w`` in float32 row blocks (no centred copy of ``v``).

    >>> project(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0]), np.eye(2)).tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    v = np.asarray(v, dtype=np.float32)
    mean, w = np.asarray(mean, np.float32), np.asarray(w, np.float32)
    out = np.empty((len(v), w.shape[1]), dtype=np.float32)
    for start in range(0, len(v), _ROWS):
        out[start : start + _ROWS] = (v[start : start + _ROWS] - mean) @ w
    return out


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

    name: ClassVar[str] = "pca-sign"
    Config = PCASignConfig

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel) -> Encoder:
        mean, w = pca(x, bits)
        return lambda v: project(v, mean, w)


class PCARandomRotation(FittedMethod):
    """PCA to K dims, a seeded random orthogonal rotation, sign: a non-learned floor."""

    name: ClassVar[str] = "pca-rr"
    Config = PCASignConfig

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel) -> Encoder:
        mean, w = pca(x, bits)
        r, _ = itq(np.zeros((1, bits)), 0, seed)  # ITQ's random orthogonal start, no iteration
        wr = (w.astype(np.float64) @ r).astype(np.float32)
        return lambda v: project(v, mean, wr)


class PCAITQ(FittedMethod):
    """PCA to K dims + Iterative Quantization (Gong & Lazebnik 2011): the classic unsupervised floor."""

    name: ClassVar[str] = "pca-itq"
    Config = PCAITQConfig

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: PCAITQConfig) -> Encoder:
        mean, w = pca(x, bits)
        r, _ = itq(project(x, mean, w).astype(np.float64), config.iterations, seed)
        wr = (w.astype(np.float64) @ r).astype(np.float32)
        return lambda v: project(v, mean, wr)
