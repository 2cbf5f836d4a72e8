"""The executor contract: a list of :class:`Task` in, one :class:`RunResult` per task out.

An executor never raises for a failed run (that run's result says FAILED, with the
reason) and never touches the run's lifecycle (the coordinator opens and ends runs); it
reports progress through a :class:`Reporter`. Tasks are plain picklable data, so they cross
to worker processes and Ray workers, which rebuild the plugin host from entry points plus
the in-process plugins named in :attr:`Task.plugins` and prepare the spec there once; the
coordinator's :class:`PreparedRun` rides along only inside its own process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost
from bench.running.planning import PreparedRun
from bench.running.spec import RunResult, RunSpec
from bench.tracking.status import RunStatus


@dataclass(frozen=True)
class Task:
    """One run to execute inside an MLflow run the coordinator already opened."""

    index: int
    spec: RunSpec
    run_id: str
    tracking_uri: str
    experiment_id: str
    parent_id: str
    output_dir: str
    #: plugins registered in process rather than through entry points: (name, module or None)
    plugins: tuple[tuple[str, str | None], ...] = ()
    #: the run as the coordinator prepared it; not pickled (other processes prepare ``spec``)
    prepared: PreparedRun | None = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "prepared": None}

    def failed(self, reason: str, status: RunStatus = RunStatus.FAILED) -> RunResult:
        """The result of this task when its run could not report one (its worker died, or
        it never started); the coordinator records the reason and ends the run."""
        return RunResult(self.spec, status, {}, self.run_id, 0.0, reason)


class Reporter(Protocol):
    """Receives progress from an executor and the coordinator (called in the coordinating process)."""

    def scheduled(self, tasks: list[Task]) -> None:
        """Called once by the coordinator with every task it will execute, before the executor starts."""
        ...

    def note(self, text: str) -> None:
        """Something about the whole invocation (a run another process holds, ...)."""
        ...

    def started(self, task: Task) -> None: ...

    def progress(self, task: Task, step: int, loss: float) -> None: ...

    def finished(self, task: Task, result: RunResult) -> None:
        """Called once per task, with its result, in the coordinating process."""
        ...


class NullReporter:
    """A reporter that ignores everything."""

    def scheduled(self, tasks: list[Task]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def started(self, task: Task) -> None:
        pass

    def progress(self, task: Task, step: int, loss: float) -> None:
        pass

    def finished(self, task: Task, result: RunResult) -> None:
        pass


class Executor(Protocol):
    """What ``register_executors`` factories return."""

    name: str

    def run(self, tasks: list[Task], host: PluginHost, reporter: Reporter) -> list[RunResult]:
        """Execute every task; return the results in task order."""
        ...


def in_process_plugins(host: PluginHost) -> tuple[tuple[str, str | None], ...]:
    """Plugins of ``host`` that did not come from an entry point, with their module's name
    (``None`` when the plugin object is not a module, so other processes cannot import it)."""
    manager = host.manager
    from_entry_points = {manager.get_name(plugin) for plugin, _ in manager.list_plugin_distinfo()}
    out = []
    for name, plugin in manager.list_name_plugin():
        if name in from_entry_points or plugin is None:
            continue
        out.append((name, plugin.__name__ if isinstance(plugin, ModuleType) else None))
    return tuple(sorted(out))


def require_portable(tasks: list[Task], executor: str) -> None:
    """Fail early when a worker process could not load an in-process plugin."""
    for task in tasks[:1]:
        stuck = [name for name, module in task.plugins if module is None]
        if stuck:
            raise BenchError(
                f"executor '{executor}': plugin(s) {', '.join(stuck)} were registered in this process "
                "and are not importable modules, so worker processes cannot load them; install them "
                "with an entry point or use --executor local"
            )
