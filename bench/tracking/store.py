"""What the tracking store already holds for a sweep: finished runs to skip, interrupted
runs to continue, and the sweep's parent run."""

from __future__ import annotations

from typing import Any

from bench.tracking import tags as T
from bench.tracking.client import Tracker
from bench.tracking.reading import all_experiment_ids


def experiment_ids(tracker: Tracker) -> list[str]:
    """Every active experiment of the store."""
    return all_experiment_ids(tracker.client)


def runs_of_config(tracker: Tracker, experiments: list[str], config_hash: str, checksum: str,
                   code_fingerprint: str) -> list[Any]:
    """Active runs of this configuration on this data split under this code, newest first
    (a run of the same configuration trained by other code is not one of them)."""
    if not experiments:
        return []
    query = (f"tags.`{T.CONFIG_HASH}` = '{config_hash}' "
             f"and tags.`{T.SPLIT_CHECKSUM}` = '{checksum}' "
             f"and tags.`{T.CODE_FINGERPRINT}` = '{code_fingerprint}'")
    return list(tracker.client.search_runs(experiments, query, max_results=100,
                                           order_by=["attributes.start_time DESC"]))


def find_parent(tracker: Tracker, experiment_id: str, sweep_hash: str) -> str | None:
    """The newest parent run of the same sweep (same set of runs) in ``experiment_id``."""
    runs = tracker.client.search_runs([experiment_id], f"tags.`{T.SWEEP_HASH}` = '{sweep_hash}'",
                                      max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id if runs else None


def reopen(tracker: Tracker, run: Any, parent_id: str) -> str:
    """Bring an unfinished run back under ``parent_id`` and clear its old failure reason."""
    run_id = run.info.run_id
    tracker.set_tags(run_id, {T.PARENT_RUN: parent_id})
    if T.FAILURE_REASON in run.data.tags:
        tracker.client.delete_tag(run_id, T.FAILURE_REASON)
    return run_id
