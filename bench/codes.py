"""Binary codes: {-1,+1} int8 matrices and their bit-packed storage form.

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
