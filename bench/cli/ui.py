"""``bench ui``: start the MLflow UI on the project's store at 127.0.0.1 on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Annotated

import typer

from bench.api.errors import BenchError
from bench.cli.app import app, console

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ui_command(uri: str, port: int) -> list[str]:
    """The ``mlflow ui`` command line for ``uri`` (a SQLite store keeps artifacts beside it).

    >>> ui_command("sqlite:////tmp/s/mlflow.db", 5001)[3:]
    ['ui', '--backend-store-uri', 'sqlite:////tmp/s/mlflow.db', '--host', '127.0.0.1', '--port', '5001', '--workers', '1', '--default-artifact-root', '/tmp/s/mlartifacts']
    """
    from bench.tracking.client import sqlite_path

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", HOST,
               "--port", str(port), "--workers", "1"]
    db = sqlite_path(uri)
    if db is not None:
        command += ["--default-artifact-root", str(db.parent / "mlartifacts")]
    return command


@app.command("ui")
def ui_command_line(
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: a free one).", min=1, max=65535)] = None,
) -> None:
    """Start the MLflow UI on the store (127.0.0.1, a free port); Ctrl-C stops it."""
    from bench.tracking.client import check_tracking_uri, resolve_tracking_uri, sqlite_path

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    if uri.startswith(("http://", "https://")):
        raise BenchError(f"the store {uri} is already a server; open {uri} in a browser")
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise BenchError(f"no MLflow store at {db}; run `bench run` first or pass --tracking-uri")
    port = port or free_port()
    console.print(f"MLflow UI for {uri} at http://{HOST}:{port}  (Ctrl-C to stop)", markup=False, highlight=False,
                  soft_wrap=True)  # one line, whatever the width: scripts and people copy the address
    sys.stdout.flush()
    raise typer.Exit(serve(ui_command(uri, port)))


def serve(command: list[str]) -> int:
    """Run the UI in its own process group until it exits, Ctrl-C or SIGTERM; then stop the
    whole group (the server starts worker processes of its own)."""
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}  # no GenAI job workers
    child = subprocess.Popen(command, env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return child.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_group(child)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop_group(child: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            time.sleep(0.5)  # let the group's other members finish their own shutdown
