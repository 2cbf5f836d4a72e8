"""The ``local`` executor: runs one after the other in this process (the default)."""

from __future__ import annotations

from bench.api.pluginhost import PluginHost
from bench.running.executors.base import Reporter, Task
from bench.running.executors.worker import run_task
from bench.running.spec import RunResult


class LocalExecutor:
    """Sequential, in this process, with per-step progress; any plugin works here."""

    name = "local"

    def run(self, tasks: list[Task], host: PluginHost, reporter: Reporter) -> list[RunResult]:
        results = []
        for task in tasks:
            reporter.started(task)

            def on_step(step: int, value: float, task: Task = task) -> None:
                reporter.progress(task, step, value)

            result = run_task(task, host, on_step)
            reporter.finished(task, result)
            results.append(result)
        return results
