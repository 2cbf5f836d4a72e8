"""Execute one task in whichever process it lands in: this one, a worker process or a Ray
worker. Plugin hosts and tracking clients are cached per process (a few of each, least
recently used first out), and datasets by
:func:`bench.data.loading.dataset_for`, so a worker loads (and checksums) each dataset once
however many runs it executes. A task's spec is prepared once, where it executes.
"""

from __future__ import annotations

import functools
import importlib
import traceback
from pathlib import Path

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost, default_host, load_plugins
from bench.running.execution import execute_run
from bench.running.executors.base import Task
from bench.running.planning import prepare_run
from bench.running.spec import RunResult
from bench.tracking.client import Tracker


@functools.lru_cache(maxsize=8)
def host_for(plugins: tuple[tuple[str, str | None], ...]) -> PluginHost:
    """The plugin host of this process: entry points plus the named in-process plugins."""
    if not plugins:
        return default_host()
    extra = {}
    for name, module in plugins:
        if module is None:
            raise BenchError(f"plugin '{name}' is not an importable module; use --executor local")
        extra[name] = importlib.import_module(module)
    return load_plugins(extra_plugins=extra)


@functools.lru_cache(maxsize=8)
def tracker_for(uri: str) -> Tracker:
    """The tracking client of ``uri`` in this process (one per store)."""
    return Tracker(uri)


def run_task(task: Task, host: PluginHost | None = None, on_step=lambda step, value: None) -> RunResult:
    """Execute ``task`` in its MLflow run (the coordinator's prepared run when it is in this
    process, else the spec prepared here); never raises for a failed run."""
    tracker = None
    try:
        tracker = tracker_for(task.tracking_uri)
        run = task.prepared or prepare_run(host or host_for(task.plugins), task.spec)
        return execute_run(run, tracker, task.run_id, Path(task.output_dir), on_step)
    except Exception as exc:  # noqa: BLE001 - failing before training starts is still a run failure
        reason = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        try:
            if tracker is not None:
                tracker.client.log_text(task.run_id, traceback.format_exc(), "traceback.txt")
        except Exception:  # noqa: BLE001, S110 - the store is unreachable; the result still says why
            pass
        return task.failed(reason)
