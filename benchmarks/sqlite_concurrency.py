"""Several processes logging complete MLflow runs to one SQLite store at once.

    .venv/bin/python benchmarks/sqlite_concurrency.py --writers 4 --runs 25 [--no-retry]

Prints the wall time, the runs stored (expected writers x runs, each name once), the lock
retries and the runs that raised. ``--no-retry`` shows what happens without the
``database is locked`` retry of :mod:`bench.tracking.retry`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import sqlite_writer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--no-retry", action="store_true")
    args = parser.parse_args()
    from mlflow.tracking import MlflowClient

    from bench.tracking.client import Tracker

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/bench.db"
        experiment = Tracker(uri).experiment("concurrency")
        n = args.writers
        start = time.perf_counter()
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")) as pool:
            outcomes = list(pool.map(sqlite_writer.log_runs, [uri] * n, [experiment] * n, range(n),
                                     [args.runs] * n, [1 if args.no_retry else 15] * n))
        seconds = time.perf_counter() - start
        names = Counter(r.info.run_name for r in MlflowClient(uri).search_runs([experiment], max_results=50000))
        finished = len(MlflowClient(uri).search_runs([experiment], "attributes.status = 'FINISHED'",
                                                     max_results=50000))
    expected = n * args.runs
    print(f"{n} writers x {args.runs} runs, retry {'off' if args.no_retry else 'on'}: {seconds:.1f} s wall "
          f"(including process start); {len(names)}/{expected} runs stored, {finished} FINISHED, "
          f"duplicates {sum(c - 1 for c in names.values())}, lock retries {[r for r, _ in outcomes]}, "
          f"runs that raised {[e for _, e in outcomes]}")


if __name__ == "__main__":
    main()
