"""Executors: how a planned set of runs is carried out.

``local`` runs them one after the other in this process, ``processes`` in one worker
process per slot (per GPU, else a configurable count) and ``ray`` as Ray tasks on a Ray
cluster. The built-in executors register through the ``register_executors`` hook from
``plugins.executors``; :mod:`bench.running.executors.coordinator` plans the MLflow side (parent
run, skipping finished runs, reopening interrupted ones) for all of them.
"""

from bench.running.executors.base import Executor, Reporter, Task

__all__ = ["Executor", "Reporter", "Task"]
