"""The typer application every ``bench`` command registers on."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="bench",
    help="facehash-bench: train and benchmark deep hashing methods for face retrieval "
    "under one identical protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: fast, and at any width it wraps the text, never cutting an option's
    # name or default (typer's rich panels cut them at 80 columns)
    rich_markup_mode=None,
)


def output_width(stream: object, environ: dict[str, str] | None = None) -> int | None:
    """The width to print at: ``$COLUMNS`` when set, else the width of whichever of the
    stream, stderr or stdin is a terminal (so ``bench run | tee log`` keeps the terminal's
    width), else 160 (a log file); ``None`` (rich decides) for a terminal stream.

    >>> output_width(None, {"COLUMNS": "80"})
    80
    """
    environ = os.environ if environ is None else environ
    if environ.get("COLUMNS", "").isdigit():
        return int(environ["COLUMNS"])
    if getattr(stream, "isatty", lambda: False)():
        return None
    for fd in (2, 0, 1):
        try:
            return os.get_terminal_size(fd).columns
        except OSError:
            continue
    return 160


# No emoji codes: user text such as ``--method :smile:`` is printed as typed.
console = Console(width=output_width(sys.stdout), emoji=False)
err_console = Console(stderr=True, width=output_width(sys.stderr), emoji=False)
