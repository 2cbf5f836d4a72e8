"""``bench server``: an MLflow tracking server for a team or a Ray cluster.

It binds to 127.0.0.1 unless ``--host`` says otherwise (then it warns: MLflow has no
authentication of its own), keeps runs in a SQLite or PostgreSQL database, serves
artifacts itself, and runs lean: one worker process and MLflow's background job runner
off (the harness never uses it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from bench.api.errors import BenchError
from bench.cli.app import app, console, err_console

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false"}


def server_command_line(backend: str, host: str, port: int, artifacts: str | None,
                        allowed_hosts: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The ``mlflow server`` command and the environment it runs with.

    >>> argv, env = server_command_line("sqlite:////srv/m.db", "127.0.0.1", 5000, None)
    >>> argv[3:], env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]
    (['server', '--backend-store-uri', 'sqlite:////srv/m.db', '--host', '127.0.0.1', '--port', '5000', '--workers', '1', '--artifacts-destination', '/srv/mlartifacts'], 'false')
    """
    from bench.tracking.client import sqlite_path

    db = sqlite_path(backend)
    if db is None and not backend.startswith(("postgresql://", "postgresql+")):
        raise BenchError(
            f"--backend-store-uri {backend}: use sqlite:///PATH/mlflow.db or "
            "postgresql://USER:PASSWORD@HOST:PORT/DB"
        )
    if db is not None and not db.parent.is_dir():
        raise BenchError(f"--backend-store-uri {backend}: folder {db.parent} does not exist; create it first")
    if db is not None:  # the server creates or migrates the schema: never in another program's database
        from bench.tracking.sqlite_store import MLFLOW_TABLES, check_database_file, check_foreign

        check_database_file(backend, db, f"--backend-store-uri {backend}")
        check_foreign(f"--backend-store-uri {backend}", db, MLFLOW_TABLES, "MLflow store")
    if artifacts is None:
        artifacts = str(db.parent / "mlartifacts") if db is not None else str(Path.cwd() / "mlartifacts")
    argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--host", host,
            "--port", str(port), "--workers", "1", "--artifacts-destination", artifacts]
    if allowed_hosts:
        argv += ["--allowed-hosts", allowed_hosts]
    return argv, {**os.environ, **LEAN_ENV}


@app.command("server")
def server_command(
    backend_store_uri: Annotated[str | None, typer.Option(help="sqlite:///PATH/mlflow.db or postgresql://USER:PASSWORD@HOST:PORT/DB (default: sqlite:///./mlflow.db).")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind. Anything but 127.0.0.1 exposes the store to the network (MLflow has no authentication).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 5000,
    artifacts_destination: Annotated[str | None, typer.Option(help="Where uploaded artifacts go (default: mlartifacts/ beside a SQLite database, else ./mlartifacts).")] = None,
    allowed_hosts: Annotated[str | None, typer.Option(help="Host names clients may use to reach the server, comma separated (MLflow allows localhost and private IPs by default).")] = None,
) -> None:
    """Start an MLflow tracking server (one worker, background jobs off) for sweeps and teams."""
    backend = backend_store_uri or f"sqlite:///{(Path.cwd() / 'mlflow.db').resolve()}"
    if backend.startswith("postgresql"):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise BenchError("a PostgreSQL backend needs psycopg2; install it with pip install psycopg2-binary") from None
    argv, env = server_command_line(backend, host, port, artifacts_destination, allowed_hosts)
    if host not in LOCAL_HOSTS:
        err_console.print(
            f"warning: serving on {host}:{port}. MLflow has no authentication of its own: anyone who can "
            "reach this port can read, change and delete every run. Keep it on a trusted network "
            "(firewall, VPN) or behind a reverse proxy that authenticates.", markup=False)
    console.print(f"MLflow server on http://{host}:{port} (store {backend}); use "
                  f"--tracking-uri http://{host}:{port} with bench run / bench sweep. Ctrl-C stops it.", markup=False, soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)  # the server replaces this process: signals reach it directly
