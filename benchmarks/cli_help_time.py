"""Median wall time of ``bench --help`` (a fresh interpreter each time).

    python benchmarks/cli_help_time.py [--repeat 15] [--pythonpath PATH ...]

With several ``--pythonpath`` values (e.g. an old and a new checkout) the runs alternate
between them, so that machine load hits both alike. Nothing runs at import.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMAND = "from bench.cli import main; main(['--help'])"


def help_seconds(pythonpath: str | None) -> float:
    """Wall seconds of one ``bench --help`` in a new interpreter."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    # run outside any checkout: `-c` puts the working folder first on sys.path
    subprocess.run([sys.executable, "-c", COMMAND], env=env, cwd=tempfile.gettempdir(),
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pythonpath", action="append", default=None)
    args = parser.parse_args()
    paths = args.pythonpath or [os.environ.get("PYTHONPATH", "")]
    times: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(args.repeat):
        for path in paths:
            times[path].append(help_seconds(path))
    for path, values in times.items():
        print(f"bench --help: median {statistics.median(values):.3f} s, min {min(values):.3f} s "
              f"over {len(values)} runs (PYTHONPATH={path or '-'})")


if __name__ == "__main__":
    main()
