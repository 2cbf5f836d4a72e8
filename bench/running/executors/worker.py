"""Execute one task in whichever process it lands in: this one, a worker process or a Ray
worker. Plugin hosts, datasets and tracking clients are cached per process, so a worker
loads each dataset once however many runs it executes.
"""

from __future__ import annotations

import importlib
import traceback
from pathlib import Path

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost, default_host, load_plugins
from bench.data.faces import FaceData
from bench.data.loading import dataset_for
from bench.running.executors.base import Task
from bench.running.runner import RunResult, RunSpec, execute_run
from bench.tracking.client import Tracker

_HOSTS: dict[tuple, PluginHost] = {}
_TRACKERS: dict[str, Tracker] = {}


def host_for(plugins: tuple[tuple[str, str | None], ...]) -> PluginHost:
    """The plugin host of this process: entry points plus the named in-process plugins."""
    if plugins not in _HOSTS:
        if not plugins:
            _HOSTS[plugins] = default_host()
        else:
            extra = {}
            for name, module in plugins:
                if module is None:
                    raise BenchError(f"plugin '{name}' is not an importable module; use --executor local")
                extra[name] = importlib.import_module(module)
            _HOSTS[plugins] = load_plugins(extra_plugins=extra)
    return _HOSTS[plugins]


def data_for(host: PluginHost, spec: RunSpec) -> FaceData:
    """The run's dataset, loaded once per process."""
    return dataset_for(host, spec.protocol, spec.data_root)


def tracker_for(uri: str) -> Tracker:
    if uri not in _TRACKERS:
        _TRACKERS[uri] = Tracker(uri)
    return _TRACKERS[uri]


def run_task(task: Task, host: PluginHost | None = None, on_step=lambda step, value: None) -> RunResult:
    """Execute ``task`` in its MLflow run; never raises for a failed run."""
    try:
        host = host or host_for(task.plugins)
        data = data_for(host, task.spec)
        return execute_run(
            host, task.spec, data, tracker_for(task.tracking_uri), task.experiment_id, task.parent_id,
            Path(task.output_dir), on_step, run_id=task.run_id,
        )
    except Exception as exc:  # noqa: BLE001 - failing before training starts is still a run failure
        reason = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        return fail_task(task, reason, traceback.format_exc())


def fail_task(task: Task, reason: str, details: str = "", status: str = "FAILED") -> RunResult:
    """Mark the task's run ``status`` with its reason (and traceback) and return the result.

    Used when a run cannot record its own failure: its worker died, or it never started.
    """
    try:
        tracker = tracker_for(task.tracking_uri)
        tracker.set_tags(task.run_id, {"failure_reason": reason[:4000]})
        if details:
            tracker.client.log_text(task.run_id, details, "traceback.txt")
        tracker.end(task.run_id, status)
    except Exception:  # noqa: BLE001, S110 - the store is unreachable; the summary still lists it
        pass
    return RunResult(task.spec, status, {}, task.run_id, 0.0, reason)
