"""What Hamming tie counting produces, whichever backend (numba on the CPU, torch on CUDA) counted it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TieCounts:
    """Per query ``q`` and distance ``t``: ``n[q, t]`` gallery items, ``r[q, t]`` relevant ones.

    ``stable[q]`` is the sum over relevant items of hits/rank when ties are broken by
    gallery index (a deterministic stable sort); AP_stable = stable / R.
    """

    n: np.ndarray
    r: np.ndarray
    stable: np.ndarray
