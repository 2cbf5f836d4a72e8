"""Hamming retrieval evaluation: exact, tie-aware metrics from counts, never from sorting.

Public API: :func:`evaluate` -> :class:`Evaluation`, :func:`save_evaluation_artifacts`,
and :func:`hamming_distances` (a small full-matrix helper).
"""

from bench.evaluation.engine import Evaluation, evaluate, save_evaluation_artifacts
from bench.evaluation.hamming import hamming_distances

__all__ = ["Evaluation", "evaluate", "hamming_distances", "save_evaluation_artifacts"]
