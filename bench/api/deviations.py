"""Deviations as data: the one way a method (or the harness) names, in a run's tags, where
the run departs from its reference. ``Method.tags`` returns keys made by :func:`deviation_tag`;
the harness stores them under ``facehash.`` (:data:`bench.tracking.tags.DEVIATION_PREFIX`)."""

from __future__ import annotations

DEVIATION = "deviation."


def deviation_tag(name: str) -> str:
    """The tag key of the deviation ``name``, as a method's ``tags()`` returns it.

    >>> deviation_tag("precision"), deviation_tag("config.optimizer.lr")
    ('deviation.precision', 'deviation.config.optimizer.lr')
    """
    return f"{DEVIATION}{name}"
