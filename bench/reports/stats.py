"""Uncertainty over queries: percentile bootstrap intervals of a mean, a paired sign-flip
permutation test, and Holm's correction for testing many cells at once.

All functions are pure and seeded, so a report is reproducible number for number.
"""

from __future__ import annotations

import numpy as np

CHUNK_ELEMENTS = 4_000_000  # resample matrices are built in chunks of about this many entries


def bootstrap_ci(
    values: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(values)``, resampling entries with replacement.

    >>> lo, hi = bootstrap_ci(np.array([0.0, 1.0] * 50))
    >>> bool(lo < 0.5 < hi), round(hi - lo, 1)
    (True, 0.2)
    >>> bootstrap_ci(np.array([0.3, 0.3, 0.3]))
    (0.3, 0.3)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("bootstrap_ci needs a non-empty 1-D array")
    rng = np.random.default_rng(seed)
    n = len(values)
    means = []
    rows = max(1, CHUNK_ELEMENTS // n)
    for start in range(0, resamples, rows):
        idx = rng.integers(0, n, size=(min(rows, resamples - start), n))
        means.append(values[idx].mean(axis=1))
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(np.concatenate(means), [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_signflip_test(a: np.ndarray, b: np.ndarray, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value that paired samples ``a`` and ``b`` have equal means.

    Under the null each difference ``a_i - b_i`` is as likely positive as negative, so the
    observed mean difference is compared with the means after random sign flips
    (Monte Carlo; ``p = (1 + #{|flipped| >= |observed|}) / (1 + resamples)``).

    >>> a = np.linspace(0.5, 0.9, 40)
    >>> paired_signflip_test(a, a)
    1.0
    >>> paired_signflip_test(a + 0.1, a) < 0.001
    True
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples must be 1-D and of equal length, got {a.shape} and {b.shape}")
    diff = a - b
    observed = abs(diff.mean())
    rng = np.random.default_rng(seed)
    n = len(diff)
    extreme = 0
    rows = max(1, CHUNK_ELEMENTS // n)
    tolerance = 1e-12 * max(1.0, observed)
    for start in range(0, resamples, rows):
        signs = rng.integers(0, 2, size=(min(rows, resamples - start), n), dtype=np.int8) * 2 - 1
        flipped = np.abs(signs @ diff) / n
        extreme += int(np.sum(flipped >= observed - tolerance))
    return (1 + extreme) / (1 + resamples)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given).

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [round(float(x), 12) for x in adjusted]
