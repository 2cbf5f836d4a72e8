"""The ``ray`` executor: each run is a Ray task on a Ray cluster.

``address`` connects to an existing cluster (``ray.init(address=...)``, e.g. ``auto`` on
a cluster node or ``ray://head:10001``); without it a local Ray instance is started for
the sweep. Each run asks for one CPU and, when the cluster has GPUs, one GPU (Ray sets
``CUDA_VISIBLE_DEVICES``). Workers rebuild the plugin host from entry points, so every node
needs facehash-bench and the plugins installed, and every node must reach the tracking
store: use an MLflow server (``bench server``) as the tracking URI for a cluster. Ray is
an optional extra: ``pip install 'facehash-bench[ray]'``.
"""

from __future__ import annotations

import logging
from typing import Any

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost
from bench.running.executors.base import Reporter, Task, require_portable
from bench.running.executors.worker import run_task
from bench.running.spec import RunResult


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BenchError(
            "executor 'ray' needs Ray, an optional extra; install it with "
            "pip install 'facehash-bench[ray]' or use --executor processes"
        ) from None
    return ray


def connect(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster at ``address``, else start a local Ray instance (``num_cpus`` CPUs),
    unless Ray is already initialised; returns whether it was started here."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise BenchError(
            f"--ray-address {address}: cannot connect ({exc}); start the cluster "
            "(ray start --head) or fix the address"
        ) from None
    return True


class RayExecutor:
    """Ray tasks, at most ``max_parallel`` in flight (default: as many as the cluster fits)."""

    name = "ray"

    def __init__(self, address: str | None = None, max_parallel: int | None = None,
                 gpus_per_run: float | None = None) -> None:
        self.address = address
        self.max_parallel = max_parallel
        self.gpus_per_run = gpus_per_run

    def run(self, tasks: list[Task], host: PluginHost, reporter: Reporter) -> list[RunResult]:
        require_portable(tasks, self.name)
        ray = import_ray()
        if not tasks:
            return []
        started_here = connect(ray, self.address, self.max_parallel)
        try:
            return self._run(ray, tasks, reporter)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray: Any, tasks: list[Task], reporter: Reporter) -> list[RunResult]:
        gpus = self.gpus_per_run
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(run_task)
        limit = self.max_parallel or len(tasks)
        waiting = list(reversed(tasks))
        in_flight: dict[Any, Task] = {}
        results: dict[int, RunResult] = {}
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < limit:
                    task = waiting.pop()
                    in_flight[remote.remote(task)] = task
                    reporter.started(task)
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    task = in_flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - the worker died or Ray lost the task
                        first = (str(exc).strip().splitlines() or [""])[0]
                        result = task.failed(f"ray task failed: {type(exc).__name__}: {first}")
                    results[task.index] = result
                    reporter.finished(task, result)
        except BaseException:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            raise
        return [results[t.index] for t in tasks]
