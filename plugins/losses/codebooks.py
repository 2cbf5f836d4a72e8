"""Fixed +-1 class codebooks (hash centres): one K-bit target per identity, for losses that
pull each code towards its class's centre (CSQ) or classify against the centres
(OrthoHash). Every generator is seeded by the run's seed and returns ``(C, K)`` float32.

- ``hadamard``: CSQ's algorithm 1 (``CSQ.py`` ``get_hash_targets``): the rows of
  ``[H_K; -H_K]`` (K a power of two) in class order, pairwise at least K/2 apart. Where
  there are more than 2K classes, the rest come from ``min-distance`` (at distance
  ``min_distance`` from every row, Hadamard rows included).
- ``bernoulli``: independent fair +-1 bits (OrthoHash's default ``codebook_method='B'``).
- ``min-distance``: Bernoulli centres drawn one by one, a draw kept only if it is at least
  ``d`` bits from every centre kept so far (as FIRe's ``get_centroid`` does; FIRe lowers
  ``d`` after 10,000 failures, this one keeps ``d`` fixed and raises). The default ``d``
  is :func:`gilbert_varshamov_distance`: the largest d with ``C * V(K, d-1) <= 2^(K-1)``
  (V the Hamming-ball volume), so at any point at most half of all K-bit words lie within
  d-1 of a kept centre and each draw is accepted with probability at least 1/2: a centre
  needs 2 draws on average, and ``max_draws`` failures in a row have probability at most
  2^-max_draws. For 1,595 classes: d = 1, 4, 8, 12 at 12, 24, 36, 48 bits.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.api.errors import BenchError

CODEBOOKS = ("hadamard", "bernoulli", "min-distance")
DRAWS_PER_TRY = 4


def gilbert_varshamov_distance(num_classes: int, bits: int) -> int:
    """The largest d (>= 1) with ``num_classes * sum_{i<d} C(bits, i) <= 2^(bits-1)``.

    >>> [gilbert_varshamov_distance(1595, k) for k in (12, 24, 36, 48)]
    [1, 4, 8, 12]
    """
    d, ball = 1, 1  # ball = V(bits, d - 1)
    while d < bits and num_classes * (ball + math.comb(bits, d)) <= 2 ** (bits - 1):
        ball += math.comb(bits, d)
        d += 1
    return d


def pack(codes: torch.Tensor) -> np.ndarray:
    """+-1 words ``(N, K)`` as bits (+1 -> 1) in ``ceil(K/64)`` uint64 per word.

    >>> unpack(pack(torch.tensor([[1.0, -1.0, 1.0]])), 3).tolist()
    [[1.0, -1.0, 1.0]]
    """
    bits = (codes.numpy() > 0).astype(np.uint64)
    words = np.zeros((len(codes), -(-codes.shape[1] // 64)), dtype=np.uint64)
    for b in range(codes.shape[1]):
        words[:, b // 64] |= bits[:, b] << np.uint64(b % 64)
    return words


def unpack(words: np.ndarray, bits: int) -> torch.Tensor:
    """The +-1 float32 words ``(N, bits)`` of :func:`pack`'s uint64 form."""
    out = np.stack([(words[:, b // 64] >> np.uint64(b % 64)) & np.uint64(1) for b in range(bits)], axis=1)
    return torch.from_numpy(out.astype(np.float32) * 2 - 1)


def _draw(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """``n`` uniform ``bits``-bit words, packed."""
    words = rng.integers(0, 2**64, size=(n, -(-bits // 64)), dtype=np.uint64, endpoint=False)
    if bits % 64:
        words[:, -1] &= np.uint64((1 << (bits % 64)) - 1)
    return words


def bernoulli_centres(num_classes: int, bits: int, seed: int = 0) -> torch.Tensor:
    """Independent fair +-1 bits.

    >>> c = bernoulli_centres(3, 5); c.shape, sorted(set(c.flatten().tolist()))
    (torch.Size([3, 5]), [-1.0, 1.0])
    """
    return unpack(_draw(np.random.default_rng(seed), num_classes, bits), bits)


def min_distance_centres(num_classes: int, bits: int, seed: int = 0, min_distance: int | None = None,
                         start: torch.Tensor | None = None, max_draws: int = 64) -> torch.Tensor:
    """Bernoulli centres, each at least ``min_distance`` bits (default
    :func:`gilbert_varshamov_distance`) from every other and from the rows of ``start``,
    which come first. A centre that ``max_draws`` draws cannot place raises a one-line
    :class:`BenchError`. Words are packed in uint64 and compared by XOR and popcount
    (about a second for 1,595 centres on one loaded CPU core).

    >>> c = min_distance_centres(20, 16, min_distance=5)
    >>> int(pairwise_hamming(c).min()) >= 5
    True
    >>> min_distance_centres(3, 4, min_distance=5)
    Traceback (most recent call last):
    bench.api.errors.BenchError: codebook 'min-distance': no 4-bit centre 5 bits from the 1 placed in 64 draws; lower min_distance
    """
    d = gilbert_varshamov_distance(num_classes, bits) if min_distance is None else min_distance
    rng = np.random.default_rng(seed)
    kept = np.zeros((num_classes, -(-bits // 64)), dtype=np.uint64)
    count = 0 if start is None else min(len(start), num_classes)
    if count:
        kept[:count] = pack(start[:count])
    for index in range(count, num_classes):
        for _ in range(max(1, max_draws // DRAWS_PER_TRY)):
            draws = _draw(rng, DRAWS_PER_TRY, bits)
            dist = np.bitwise_count(kept[:index, None, :] ^ draws[None]).sum(axis=2)  # (index, draws)
            far = (dist >= d).all(axis=0)
            if far.any():
                kept[index] = draws[np.argmax(far)]
                break
        else:
            raise BenchError(f"codebook 'min-distance': no {bits}-bit centre {d} bits from the {index} "
                             f"placed in {max_draws} draws; lower min_distance")
    return unpack(kept, bits)


def hadamard_centres(num_classes: int, bits: int, seed: int = 0, min_distance: int | None = None) -> torch.Tensor:
    """Rows of ``[H; -H]`` (Sylvester's H_K, as ``scipy.linalg.hadamard``), then
    :func:`min_distance_centres` past 2K classes. ``bits`` must be a power of two.

    >>> hadamard_centres(3, 4).tolist()
    [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]]
    """
    if bits < 1 or bits & (bits - 1):
        raise BenchError(f"codebook 'hadamard' needs a power-of-two code length, got {bits}; "
                         "use codebook=min-distance")
    h = torch.ones(1, 1)
    while h.shape[0] < bits:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    rows = torch.cat([h, -h])[:num_classes]
    if num_classes <= len(rows):
        return rows
    return min_distance_centres(num_classes, bits, seed, min_distance, start=rows)


def make_codebook(name: str, num_classes: int, bits: int, seed: int = 0,
                  min_distance: int | None = None) -> torch.Tensor:
    """The codebook ``name`` (one of :data:`CODEBOOKS`); ``hadamard`` at a length that is
    not a power of two falls back to ``min-distance`` (CSQ's reference cannot build one).

    >>> make_codebook("hadamard", 4, 12).shape
    torch.Size([4, 12])
    """
    if name == "bernoulli":
        return bernoulli_centres(num_classes, bits, seed)
    if name == "min-distance" or (name == "hadamard" and bits & (bits - 1)):
        return min_distance_centres(num_classes, bits, seed, min_distance)
    if name == "hadamard":
        return hadamard_centres(num_classes, bits, seed, min_distance)
    raise BenchError(f"codebook '{name}' is unknown; use one of {', '.join(CODEBOOKS)}")


def pairwise_hamming(codebook: torch.Tensor) -> torch.Tensor:
    """Hamming distances of every unordered pair of distinct rows (a flat vector).

    >>> pairwise_hamming(torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])).tolist()
    [1.0, 2.0, 1.0]
    """
    k = codebook.shape[1]
    dist = (k - codebook @ codebook.T) / 2
    i, j = torch.triu_indices(len(codebook), len(codebook), 1)
    return dist[i, j]
