"""The names of the retrieval-cost metrics ``bench cost`` logs to a run and the reports read
back (one vocabulary for both sides): ``cost_<kind>_<size>_<what>``, e.g.
``cost_flat_1e6_query_ms``, plus the bytes of one code and of one float embedding."""

from __future__ import annotations

import math

BYTES_PER_FACE = "cost_bytes_per_face"  # face_bytes of the run, as bench cost logs it (= the run's bytes_per_face)
FLOAT_BYTES_PER_FACE = "cost_float_bytes_per_face"  # face_bytes of one float32 embedding of the top line
ENCODE_IMAGES_PER_S = "cost_encode_images_per_s"  # the run's stored encoder, batched
ENCODE_MS = "cost_encode_ms_per_image"  # one image at a time
WHATS = ("query_ms", "p99_ms", "qps", "build_s", "ram_bytes_per_face", "recall")


def face_bytes(bits: int = 0, dim: int = 0) -> float:
    """Bytes per face, the one definition behind every run's ``bytes_per_face`` and
    ``bench cost``'s ``cost_bytes_per_face``: ``bits / 8`` for a binary code (a fraction when the
    bits are no multiple of 8; an index stores whole bytes, its rows' ``code_bytes``), 4 bytes
    per dimension for a float32 embedding (``dim``).

    >>> face_bytes(12), face_bytes(48), face_bytes(dim=128)
    (1.5, 6.0, 512.0)
    """
    return float(4 * dim) if dim else bits / 8


def size_label(size: int) -> str:
    """``1e6`` for a power of ten, the number otherwise.

    >>> size_label(10**7), size_label(2500)
    ('1e7', '2500')
    """
    exponent = round(math.log10(size)) if size > 0 else 0
    return f"1e{exponent}" if 10**exponent == size else str(size)


def cost_metric(kind: str, size: int, what: str) -> str:
    """The metric name of one measurement.

    >>> cost_metric("multihash", 10**6, "recall")
    'cost_multihash_1e6_recall'
    """
    if what not in WHATS:
        raise ValueError(f"unknown cost measurement '{what}'; known: {', '.join(WHATS)}")
    return f"cost_{kind}_{size_label(size)}_{what}"
