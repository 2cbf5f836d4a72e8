"""Retrieval metrics that every evaluation computes beside the built-in ones (the opt-in
ones only when named in ``evaluation.opt_in_metrics`` or ``bench eval --metric``)."""

from bench import hookimpl
from bench.evaluation.plugin_metrics import opt_in
from plugins.metrics.legacy_ddh import legacy_ap, legacy_precision_r2, legacy_recall_r2
from plugins.metrics.legacy_ranking import (
    legacy_ap_argsort,
    legacy_precision_at_50,
    legacy_precision_at_50_argsort,
)


@hookimpl
def register_metrics(register):
    register("map_legacy", legacy_ap)
    register("precision_at_50_legacy", legacy_precision_at_50)
    register("precision_r2_legacy", legacy_precision_r2)
    register("recall_r2_legacy", legacy_recall_r2)
    register("map_legacy_argsort", opt_in(legacy_ap_argsort))
    register("precision_at_50_legacy_argsort", opt_in(legacy_precision_at_50_argsort))
