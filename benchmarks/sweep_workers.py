"""Wall time of the 8-run sweep (lsh and tiny-hash x 2 code lengths x 2 seeds on ORL) with
the ``processes`` executor and 1 vs 2 workers (and ``local`` for reference).

    .venv/bin/python benchmarks/sweep_workers.py [--epochs 3] [--workers 1,2] [--local]

Each configuration runs into a fresh SQLite store, so nothing is skipped. The times include
starting the worker processes (each imports torch and MLflow) and the tracking writes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))  # spawned workers inherit sys.path and import the plugin by name


def sweep_once(executor, epochs: int) -> tuple[float, str]:
    import minimal_plugin

    from bench.api.pluginhost import load_plugins
    from bench.running.executors.coordinator import execute_runs
    from bench.running.sweep import SweepFile, expand
    from bench.tracking.client import Tracker

    host = load_plugins(extra_plugins={"minimal_plugin": minimal_plugin})
    sweep = SweepFile(methods=["lsh", "tiny-hash"], bits=[8, 16], seeds=[0, 1], datasets=["orl"],
                      overrides={"protocol.epochs": epochs})
    runs = expand(host, sweep)
    with tempfile.TemporaryDirectory() as tmp:
        tracker = Tracker(f"sqlite:///{tmp}/m.db")
        experiment = tracker.experiment("workers")
        start = time.perf_counter()
        outcome = execute_runs(host, runs, executor, tracker, experiment, Path(tmp) / "out")
        return time.perf_counter() - start, outcome.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--local", action="store_true", help="also time the local executor")
    args = parser.parse_args()
    from bench.running.executors.local import LocalExecutor
    from bench.running.executors.processes import ProcessExecutor

    configs = [(f"processes x{n}", ProcessExecutor(int(n))) for n in args.workers.split(",")]
    if args.local:
        configs.insert(0, ("local", LocalExecutor()))
    for name, executor in configs:
        seconds, summary = sweep_once(executor, args.epochs)
        print(f"{name}: {seconds:.1f} s wall for 8 runs ({summary}); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)


if __name__ == "__main__":
    main()
