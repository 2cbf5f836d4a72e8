"""Binary codes: {-1,+1} int8 matrices and their bit-packed forms.

Storage form: uint8 bytes, one bit per code position (+1 -> 1), MSB first, any K.
Distance form: the same bytes read as little-endian uint64 words (zero padded), so a
Hamming distance is one XOR and one popcount per word.

>>> import numpy as np
>>> c = np.array([[1, -1, 1, 1, -1, -1, -1, 1, 1, -1]], dtype=np.int8)
>>> p = pack_codes(c); p.shape, p.dtype
((1, 2), dtype('uint8'))
>>> bool((unpack_codes(p, 10) == c).all())
True
"""

from __future__ import annotations

import numpy as np


def sign_codes(u: np.ndarray) -> np.ndarray:
    """Binary codes from relaxed ones: sign with sign(0) = +1, int8 in {-1, +1}.

    >>> sign_codes(np.array([[-0.1, 0.0, 3.0]])).tolist()
    [[-1, 1, 1]]
    """
    return np.where(np.asarray(u) >= 0, 1, -1).astype(np.int8)


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """Pack (N, K) codes in {-1,+1} into (N, ceil(K/8)) uint8, bit = 1 for +1 (MSB first)."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (N, K), got shape {codes.shape}")
    return np.packbits(codes > 0, axis=1)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes` for codes of length ``bits``."""
    bits_arr = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=bits)
    return (bits_arr.astype(np.int8) * 2 - 1).astype(np.int8)


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
