"""A concurrent MLflow writer for the SQLite concurrency test and benchmark (imported by
spawned processes; kept free of torch so that they start quickly)."""

from __future__ import annotations


def log_runs(uri: str, experiment_id: str, worker: int, count: int, attempts: int = 15) -> tuple[int, int]:
    """Log ``count`` complete runs as one of several concurrent writers.

    Returns (lock retries, runs that raised). ``attempts=1`` disables the retry.
    """
    from bench.tracking.client import Tracker

    tracker = Tracker(uri)
    tracker.client._attempts = attempts
    errors = 0
    for i in range(count):
        try:
            run_id = tracker.start_run(experiment_id, f"w{worker}-r{i}", {"worker": str(worker), "i": str(i)})
            tracker.log_params(run_id, {f"p{k}": k * i for k in range(8)})
            for step in range(3):
                tracker.log_metrics(run_id, {"loss": 1.0 / (step + 1), "i": float(i)}, step)
            tracker.set_tags(run_id, {"done": "yes"})
            tracker.end(run_id, "FINISHED")
        except Exception:  # noqa: BLE001 - counted: only possible without the retry
            errors += 1
    return tracker.client.retries, errors


def first_use(uri: str, worker: int, start_at: float) -> str:
    """One of several processes that open a store nobody created yet at the same moment
    (``start_at``, a ``time.time()``), then log one run; returns its id."""
    import time

    from bench.tracking.client import Tracker

    time.sleep(max(0.0, start_at - time.time()))
    tracker = Tracker(uri)
    run_id = tracker.start_run(tracker.experiment("race"), f"w{worker}", {"worker": str(worker)})
    tracker.log_metrics(run_id, {"x": float(worker)})
    tracker.end(run_id, "FINISHED")
    return run_id


def warm_up(seconds: float) -> int:
    """Import what a writer needs (so trials time the store, not imports); returns the pid."""
    import os
    import time

    import mlflow.tracking  # noqa: F401

    import bench.tracking.client  # noqa: F401

    time.sleep(seconds)
    return os.getpid()
