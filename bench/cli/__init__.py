"""The ``bench`` command line. Each command lives in its own module of this package.

User errors (:class:`bench.api.errors.BenchError`) print one line and exit with code 2.
"""

from __future__ import annotations

import signal
import sys
import threading

import typer

from bench.api.errors import BenchError

# Each command module registers its command on the shared typer app when imported.
from bench.cli import (  # noqa: F401
    cost,
    data,
    leaderboard,
    plugins_cmd,
    retrieval,
    run,
    runs,
    server,
    sweep,
    tune,
    ui,
)
from bench.cli import eval as eval_cmd  # noqa: F401
from bench.cli.app import app, err_console
from bench.cli.failures import one_line
from bench.cli.repeats import check_repeated_options


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (``timeout``, ``docker stop``, SLURM pre-emption) stops a command as Ctrl-C
    does: the runs it holds end KILLED, and rerunning the command continues them."""
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (SIGTERM acts as Ctrl-C while it runs; the caller's handler is
    restored after, so an in-process caller keeps its own)."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    """The command, with bad input and damaged files as one line and exit 2."""
    try:
        check_repeated_options(typer.main.get_command(app), sys.argv[1:] if argv is None else list(argv))
        app(args=argv, standalone_mode=True)
    except BenchError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # a damaged store or a full disk: one line too
        from bench.tracking.sqlite_store import OPENED

        line = one_line(exc, OPENED)
        if line is None:
            raise
        err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


__all__ = ["app", "main"]
