"""The built-in executors (local, processes, ray), registered like any third-party executor.

The implementations are harness machinery and live in :mod:`bench.running.executors`.
"""

from bench import hookimpl
from bench.running.executors.local import LocalExecutor
from bench.running.executors.processes import ProcessExecutor
from bench.running.executors.ray_cluster import RayExecutor


@hookimpl
def register_executors(register):
    register("local", LocalExecutor, "Runs one after the other in this process (default).")
    register("processes", ProcessExecutor, "One worker process per GPU, else per --max-parallel slot.")
    register("ray", RayExecutor, "Ray tasks on a Ray cluster (--ray-address); needs the ray extra.")
