"""Binary codes: sign with sign(0) = +1, bit packing and unpacking, for numpy and torch.

Code form: (N, K) int8 in {-1, +1}. Storage form: uint8 bytes, one bit per code position
(+1 -> 1), most significant bit first, zero padded, any K. Distance form: the same bytes
read as little-endian uint64 words (zero padded), so a Hamming distance is one XOR and
one popcount per word.

:func:`sign_codes`, :func:`pack_codes` and :func:`unpack_codes` take a numpy array or a
torch tensor and return the same kind (a tensor stays on its device); both backends
give identical values.

>>> c = np.array([[1, -1, 1, 1, -1, -1, -1, 1, 1, -1]], dtype=np.int8)
>>> p = pack_codes(c); p.shape, p.dtype
((1, 2), dtype('uint8'))
>>> bool((unpack_codes(p, 10) == c).all())
True
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_BIT_WEIGHTS = (128, 64, 32, 16, 8, 4, 2, 1)  # MSB first, as np.packbits


def sign_codes(u: Array) -> Array:
    """Binary codes from relaxed ones: sign with sign(0) = +1, int8 in {-1, +1} (NaN -> -1).

    >>> sign_codes(np.array([[-0.1, 0.0, 3.0]])).tolist()
    [[-1, 1, 1]]
    >>> sign_codes(torch.tensor([[-0.5, 0.0, 2.0]])).tolist()
    [[-1, 1, 1]]
    """
    if isinstance(u, torch.Tensor):
        return torch.where(u >= 0, 1, -1).to(torch.int8)
    return np.where(np.asarray(u) >= 0, 1, -1).astype(np.int8)


def pack_codes(codes: Array) -> Array:
    """Pack (N, K) codes in {-1, +1} into (N, ceil(K/8)) uint8: bit = 1 for +1, most
    significant bit first, zero padding (``np.packbits(codes > 0, axis=1)``).

    >>> pack_codes(np.array([[1, -1, 1, 1, -1, -1, -1, 1, 1, -1]])).tolist()
    [[177, 128]]
    >>> pack_codes(torch.tensor([[1, -1, 1, 1, -1, -1, -1, 1, 1, -1]])).tolist()
    [[177, 128]]
    """
    if not isinstance(codes, torch.Tensor):
        codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (N, K), got shape {tuple(codes.shape)}")
    if isinstance(codes, np.ndarray):
        return np.packbits(codes > 0, axis=1)
    n, k = codes.shape
    bits = torch.zeros((n, -(-k // 8) * 8), dtype=torch.uint8, device=codes.device)
    bits[:, :k] = (codes > 0).to(torch.uint8)
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=codes.device)
    return (bits.view(n, -1, 8) * weights).sum(dim=-1, dtype=torch.uint8)


def unpack_codes(packed: Array, bits: int) -> Array:
    """Inverse of :func:`pack_codes` for codes of length ``bits``: (N, bits) int8 in {-1, +1}.

    >>> unpack_codes(np.array([[177, 128]], dtype=np.uint8), 10).tolist()
    [[1, -1, 1, 1, -1, -1, -1, 1, 1, -1]]
    >>> unpack_codes(torch.tensor([[177, 128]], dtype=torch.uint8), 10).tolist()
    [[1, -1, 1, 1, -1, -1, -1, 1, 1, -1]]
    """
    if isinstance(packed, torch.Tensor):
        shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
        ones = (packed.to(torch.uint8).unsqueeze(-1) >> shifts) & 1
        return ones.reshape(packed.shape[0], -1)[:, :bits].to(torch.int8) * 2 - 1
    ones = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=bits)
    return (ones.astype(np.int8) * 2 - 1).astype(np.int8)


def words_from_packed(packed: np.ndarray) -> np.ndarray:
    """Bytes ``(N, B)`` -> little-endian uint64 words ``(N, ceil(B/8))``, zero padded.

    Padding bits are 0 in every row, so they never add to a Hamming distance.

    >>> w = words_from_packed(np.array([[1, 2, 3]], dtype=np.uint8))
    >>> w.shape, w.dtype, hex(int(w[0, 0]))
    ((1, 1), dtype('uint64'), '0x30201')
    """
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2:
        raise ValueError(f"packed codes must be 2-D (N, B), got shape {packed.shape}")
    n, nbytes = packed.shape
    words = max(1, -(-nbytes // 8))
    padded = np.zeros((n, words * 8), dtype=np.uint8)
    padded[:, :nbytes] = packed
    return padded.view("<u8").astype(np.uint64, copy=False)


def pack_words(codes: np.ndarray) -> np.ndarray:
    """Pack (N, K) {-1,+1} codes into uint64 words for popcount distances.

    >>> c = np.array([[1] * 70, [-1] * 70], dtype=np.int8)
    >>> w = pack_words(c); w.shape
    (2, 2)
    >>> int(np.bitwise_count(w[0] ^ w[1]).sum())
    70
    """
    return words_from_packed(pack_codes(codes))


def collapse_note(codes: np.ndarray) -> str | None:
    """How a set of codes (rows in {-1, +1}) collapsed, or ``None``: ``all codes identical``,
    or ``N of B bits constant`` (bits that never change carry no information).

    >>> collapse_note(np.array([[1, -1], [1, -1]])), collapse_note(np.array([[1, -1, 1], [1, 1, -1]]))
    ('all codes identical', '1 of 3 bits constant')
    >>> collapse_note(np.array([[1, -1], [-1, 1]])) is None
    True
    """
    codes = np.asarray(codes)
    if len(codes) < 2:
        return None
    constant = int((codes == codes[:1]).all(axis=0).sum())
    if constant == codes.shape[1]:
        return "all codes identical"
    return f"{constant} of {codes.shape[1]} bits constant" if constant else None
