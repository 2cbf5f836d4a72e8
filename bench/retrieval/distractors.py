"""Distractors grown from a run's own code distribution, never uniform random bits (which
spread over every hash bucket and make multi-index hashing look better than it is).

The binary model (:class:`CodeModel`), fitted on the gallery's codes and identities:

* an identity's **centre** is the majority of its codes' bits (a tie gives 1);
* the **flip rate** of bit j is the share of gallery codes whose bit j differs from their
  identity's centre (one rate per bit, pooled over identities);
* a distractor identity's centre is a **uniform crossover of two gallery centres** (each bit
  from one of two distinct, randomly chosen centres): new faces that keep the bit marginals and
  the bits the gallery's identities agree on, instead of copies of the gallery's identities;
* a distractor face is its identity's centre with bit j flipped with the gallery's rate; each
  identity has the gallery's median number of images.

The float model (:class:`FloatModel`) does the same in R^d with a Gaussian per identity:
centres are crossovers of two gallery centres, faces are a centre plus N(0, diag(s^2)) with s the
gallery's per-dimension within-identity spread; rows are L2-normalised (inner product = cosine).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CHUNK = 1 << 20  # rows drawn at once (bounded memory at 10^7)


def _identities(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Inverse label index, unique label count per row and the median images per identity."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(counts) < 2:
        raise ValueError("a distractor model needs a gallery of at least 2 identities")
    return inverse, counts, max(1, int(np.median(counts)))


def _crossover(centres: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform crossovers of two distinct rows of ``centres``."""
    first = rng.integers(0, len(centres), n)
    second = (first + rng.integers(1, len(centres), n)) % len(centres)
    take = rng.random((n, centres.shape[1]), dtype=np.float32) < 0.5
    return np.where(take, centres[first], centres[second])


@dataclass(frozen=True)
class CodeModel:
    """Per-identity centres and per-bit flip rates of a gallery's binary codes."""

    centres: np.ndarray  # (identities, bits) uint8 in {0, 1}
    flip: np.ndarray  # (bits,) float, P(bit differs from its identity's centre)
    per_identity: int  # images per distractor identity

    @classmethod
    def fit(cls, bits01: np.ndarray, labels: np.ndarray) -> CodeModel:
        """Fit on (N, bits) codes in {0, 1} and their identities.

        >>> m = CodeModel.fit(np.array([[1, 0], [1, 1], [0, 0], [0, 0]]), np.array([0, 0, 1, 1]))
        >>> m.centres.tolist(), m.flip.tolist(), m.per_identity
        ([[1, 1], [0, 0]], [0.0, 0.25], 2)
        """
        bits01 = np.asarray(bits01, dtype=np.uint8)
        inverse, counts, per_identity = _identities(labels)
        sums = np.zeros((len(counts), bits01.shape[1]))
        np.add.at(sums, inverse, bits01)
        centres = (2 * sums >= counts[:, None]).astype(np.uint8)
        flip = (bits01 != centres[inverse]).mean(axis=0)
        return cls(centres, flip, per_identity)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` distractor codes (n, bits) in {0, 1}, ``per_identity`` consecutive rows per identity."""
        identities = -(-n // self.per_identity)
        centres = _crossover(self.centres, identities, rng)
        rows = np.repeat(centres, self.per_identity, axis=0)[:n]
        flips = rng.random(rows.shape, dtype=np.float32) < self.flip.astype(np.float32)
        return rows ^ flips.astype(np.uint8)

    def packed(self, n: int, seed: int) -> np.ndarray:
        """``n`` distractor codes packed as faiss and ``codes.npz`` store them (MSB first, zero
        padding to whole bytes), drawn in chunks so that 10^7 codes stay within memory."""
        rng = np.random.default_rng(seed)
        width = -(-self.centres.shape[1] // 8)
        out = np.empty((n, width), dtype=np.uint8)
        for start, stop in _chunks(n, self.per_identity):
            out[start:stop] = np.packbits(self.sample(stop - start, rng), axis=1)
        return out


@dataclass(frozen=True)
class FloatModel:
    """Per-identity Gaussian centres and a per-dimension within-identity spread of float embeddings."""

    centres: np.ndarray  # (identities, dim) float32
    spread: np.ndarray  # (dim,) float32 within-identity standard deviation
    per_identity: int

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: np.ndarray) -> FloatModel:
        """Fit on (N, dim) embeddings and their identities.

        >>> m = FloatModel.fit(np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 2.0]]), np.array([0, 0, 1, 1]))
        >>> m.centres.tolist(), m.spread.tolist()
        ([[2.0, 0.0], [0.0, 2.0]], [0.7071067690849304, 0.0])
        """
        vectors = np.asarray(vectors, dtype=np.float64)
        inverse, counts, per_identity = _identities(labels)
        sums = np.zeros((len(counts), vectors.shape[1]))
        np.add.at(sums, inverse, vectors)
        centres = sums / counts[:, None]
        spread = np.sqrt(((vectors - centres[inverse]) ** 2).mean(axis=0))
        return cls(centres.astype(np.float32), spread.astype(np.float32), per_identity)

    @classmethod
    def modelled_on(cls, codes: CodeModel, dim: int, seed: int) -> FloatModel:
        """A ``dim``-D float model standing in for a network's embeddings while none is given:
        one random Gaussian centre per gallery identity, and the within/between spread ratio of
        the binary model (a bit flipped with rate p moves a ±1 coordinate by 2 with probability p)."""
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((len(codes.centres), dim)).astype(np.float32)
        # a ±1 coordinate flipped with rate p varies by 4p(1-p); the centres' coordinates by 1
        ratio = float(np.sqrt((4 * codes.flip * (1 - codes.flip)).mean()))
        return cls(centres, np.full(dim, ratio, np.float32), codes.per_identity)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` L2-normalised distractor embeddings (n, dim) float32."""
        identities = -(-n // self.per_identity)
        rows = np.repeat(_crossover(self.centres, identities, rng), self.per_identity, axis=0)[:n]
        rows = rows + rng.standard_normal(rows.shape, dtype=np.float32) * self.spread
        return normalise(rows)

    def vectors(self, n: int, seed: int) -> np.ndarray:
        """``n`` embeddings drawn in chunks."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.centres.shape[1]), dtype=np.float32)
        for start, stop in _chunks(n, self.per_identity):
            out[start:stop] = self.sample(stop - start, rng)
        return out


def normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), float32."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1)


def _chunks(n: int, per_identity: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of chunks of at most ~``CHUNK`` rows, whole identities each."""
    step = max(per_identity, CHUNK // per_identity * per_identity)
    for start in range(0, n, step):
        yield start, min(n, start + step)
