"""The ``processes`` executor: one worker process per slot on this machine.

With GPUs there is one slot per GPU (``max_parallel`` slots share them round robin), each
worker seeing only its GPU through ``CUDA_VISIBLE_DEVICES``; without GPUs there are
``max_parallel`` slots (default: the number of CPU cores). Workers are started with
``spawn`` and each is handed one task at a time, so the coordinator always knows which run
a worker holds: when a worker dies (out of memory, SIGKILL) that run's result is FAILED with
the exit code (the coordinator records it and ends the run), a fresh worker takes the slot
and the sweep goes on. Rerunning the sweep
continues such a run from its last epoch checkpoint.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from bench.api.errors import BenchError
from bench.api.pluginhost import PluginHost
from bench.config.device import cpu_count
from bench.running.executors.base import Reporter, Task, require_portable
from bench.running.executors.worker import run_task
from bench.running.spec import RunResult

PROGRESS_INTERVAL = 1.0  # seconds between step reports from a worker


def worker_main(slot: int, gpu: str | None, conn: Any, threads: int | None = None) -> None:
    """A worker process: run the tasks received on ``conn`` until ``None``; report on ``conn``.

    ``threads``: CPU threads for this worker (CPU slots share the cores instead of each
    taking all of them); an ``OMP_NUM_THREADS`` the user set wins.
    """
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before anything initialises CUDA
    if threads is not None and not os.environ.get("OMP_NUM_THREADS"):
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    last = 0.0

    def on_step(step: int, value: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL:
            last = now
            conn.send(("step", (step, value)))

    conn.send(("ready", None))
    while (task := conn.recv()) is not None:
        conn.send(("done", run_task(task, on_step=on_step)))
    conn.close()
    os._exit(0)  # everything is written; skip seconds of interpreter teardown (atexit hooks)


@dataclass
class _Worker:
    slot: int
    gpu: str | None
    process: Any
    conn: Any
    task: Task | None = None
    ready: bool = False


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_slots(max_parallel: int | None, gpus: int, cpus: int) -> list[str | None]:
    """The GPU of each worker slot (``None``: CPU only).

    >>> plan_slots(None, 0, 8), plan_slots(2, 0, 8), plan_slots(None, 2, 8), plan_slots(3, 2, 8)
    ([None, None, None, None, None, None, None, None], [None, None], ['0', '1'], ['0', '1', '0'])
    """
    if gpus:
        return [str(i % gpus) for i in range(max_parallel or gpus)]
    return [None] * (max_parallel or cpus)


class ProcessExecutor:
    """One spawned worker process per slot, each on its own pipe; survives workers that die."""

    name = "processes"

    def __init__(self, max_parallel: int | None = None) -> None:
        self.max_parallel = max_parallel

    def run(self, tasks: list[Task], host: PluginHost, reporter: Reporter) -> list[RunResult]:
        require_portable(tasks, self.name)
        if not tasks:
            return []
        ctx = mp.get_context("spawn")
        pending: deque[Task] = deque(tasks)
        results: dict[int, RunResult] = {}

        def launch(slot: int, gpu: str | None) -> _Worker:
            ours, theirs = ctx.Pipe()
            threads = None if gpu is not None else max(1, cpus // len(slots))
            process = ctx.Process(target=worker_main, args=(slot, gpu, theirs, threads), daemon=True,
                                  name=f"facehash-worker-{slot}")
            process.start()
            theirs.close()  # so that the worker's death reads as end-of-file here
            worker = _Worker(slot, gpu, process, ours)
            feed(worker)
            return worker

        def feed(worker: _Worker) -> None:
            worker.task = pending.popleft() if pending else None
            if worker.task is not None:
                worker.conn.send(worker.task)
                reporter.started(worker.task)

        def died(worker: _Worker) -> None:
            worker.process.join(timeout=5)
            reason = f"worker process died (exit code {worker.process.exitcode})"
            if not worker.ready:
                raise BenchError(f"a worker process failed to start ({reason}); in a script, start "
                                 "sweeps under if __name__ == '__main__': (workers are spawned)")
            if worker.task is not None:
                results[worker.task.index] = worker.task.failed(reason)
                reporter.finished(worker.task, results[worker.task.index])
            workers.remove(worker)
            if pending:
                workers.append(launch(worker.slot, worker.gpu))

        cpus = cpu_count()
        slots = plan_slots(self.max_parallel, gpu_count(), cpus)[: len(tasks)]
        workers = [launch(slot, gpu) for slot, gpu in enumerate(slots)]
        try:
            while len(results) < len(tasks):
                by_conn = {w.conn: w for w in workers}
                for conn in wait(list(by_conn), timeout=1.0):
                    worker = by_conn[conn]
                    try:
                        kind, payload = worker.conn.recv()
                    except (EOFError, OSError):  # every message it sent came first
                        died(worker)
                        continue
                    if kind == "ready":
                        worker.ready = True
                    elif kind == "step" and worker.task is not None:
                        reporter.progress(worker.task, *payload)
                    elif kind == "done" and worker.task is not None:
                        results[worker.task.index] = payload
                        reporter.finished(worker.task, payload)
                        feed(worker)
        except BaseException:  # Ctrl-C: stop now; the coordinator marks unfinished runs KILLED
            _stop(workers, grace=0.0)
            raise
        _stop(workers, grace=10.0)
        return [results[t.index] for t in tasks]


def _stop(workers: list[_Worker], grace: float) -> None:
    for worker in workers:
        try:
            worker.conn.send(None)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(timeout=5)
        worker.conn.close()
