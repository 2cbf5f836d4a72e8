"""The typer application every ``bench`` command registers on."""

from __future__ import annotations

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
)
# Tables stay readable when output is piped (rich assumes 80 columns there). No emoji codes:
# user text such as ``--method :smile:`` is printed as typed.
console = Console(width=None if sys.stdout.isatty() else 160, emoji=False)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160, emoji=False)
