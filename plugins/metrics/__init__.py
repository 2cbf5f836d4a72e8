"""Retrieval metrics that every evaluation computes beside the built-in ones."""

from bench import hookimpl
from plugins.metrics.legacy_ddh import legacy_ap


@hookimpl
def register_metrics(register):
    register("map_legacy", legacy_ap)
