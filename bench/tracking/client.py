"""MLflow tracking with an explicit store: experiments, parent and child runs, logging.

The tracking URI is always explicit: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``,
else ``sqlite:///<cwd>/mlflow.db``. It is checked before anything is written.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.api.errors import BenchError
from bench.tracking.retry import RetryingClient
from bench.tracking.sqlite_store import (
    MLFLOW_TABLES,
    check_database_file,
    check_foreign,
    is_memory_uri,
    mlflow_client,
    sqlite_path,
)
from bench.tracking.status import RunStatus
from bench.tracking.tags import PARENT_RUN

DEFAULT_DB = "mlflow.db"
# stores MLflow 3 opens: its SQLAlchemy databases (with an optional +driver) and servers
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
SERVER_SCHEMES = ("http", "https", "databricks")
MAX_EXPERIMENT_NAME = 500  # mlflow.utils.validation.MAX_EXPERIMENT_NAME_LENGTH


def resolve_tracking_uri(cli_value: str | None = None) -> str:
    """The tracking URI to use: CLI, then environment, then ``sqlite:///<cwd>/mlflow.db``."""
    uri = cli_value or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve()}"


def check_tracking_uri(uri: str, *, write: bool = True) -> None:
    """Fail with a one-line error when the store at ``uri`` cannot be used; writes nothing. A
    read-only command (``write=False``) needs an existing store, not a writable folder."""
    if is_memory_uri(uri):
        raise BenchError(f"tracking URI {uri} is an in-memory database that keeps nothing after the run; "
                         "use sqlite:///PATH/mlflow.db or http://HOST:PORT")
    db = sqlite_path(uri)
    if db is not None:
        check_database_file(uri, db)
        folder = db.parent if str(db.parent) else Path(".")
        if not folder.is_dir():
            raise BenchError(
                f"tracking URI {uri}: folder {folder} does not exist; create it or pass another --tracking-uri"
            )
        check_foreign(f"tracking URI {uri}", db, MLFLOW_TABLES, "MLflow store", write=write)
        if not write:
            return
        if not os.access(folder, os.W_OK):
            raise BenchError(f"tracking URI {uri}: folder {folder} is not writable; pass another --tracking-uri")
        return
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise BenchError(
                f"tracking URI {uri} is unreachable ({getattr(exc, 'reason', exc)}); start the server "
                "(bench server) or pass another --tracking-uri"
            ) from None
        return
    if uri.startswith("file:") or "://" not in uri:
        raise BenchError(
            f"tracking URI {uri}: MLflow 3 refuses file stores; use sqlite:///PATH/mlflow.db or http://HOST:PORT"
        )
    scheme = uri.split("://", 1)[0]
    if scheme.split("+", 1)[0] not in DATABASE_SCHEMES + SERVER_SCHEMES:
        raise BenchError(f"tracking URI {uri}: unknown scheme '{scheme}'; use sqlite:///PATH/mlflow.db or http://HOST:PORT")


def check_experiment_name(name: str) -> None:
    """A one-line error for an experiment name MLflow would refuse (empty, or longer than
    :data:`MAX_EXPERIMENT_NAME`), checked before the store is touched.

    >>> check_experiment_name("x" * 501)
    Traceback (most recent call last):
    bench.api.errors.BenchError: --experiment: the name has 501 characters; MLflow accepts at most 500
    """
    if not name.strip():
        raise BenchError("--experiment: the name is empty; give a name or drop the option")
    if len(name) > MAX_EXPERIMENT_NAME:
        raise BenchError(f"--experiment: the name has {len(name)} characters; MLflow accepts at most {MAX_EXPERIMENT_NAME}")


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a local SQLite store keeps artifacts: ``mlartifacts/`` beside the database."""
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "mlartifacts" / artifact_folder(experiment)).resolve().as_uri()


def artifact_folder(experiment: str) -> str:
    """The experiment's folder name under ``mlartifacts/``: one path component, never ``.``,
    ``..`` or hidden (so no name leads outside ``mlartifacts/``).

    >>> artifact_folder("facehash-orl-1a2b"), artifact_folder("a/b"), artifact_folder(".."), artifact_folder(".")
    ('facehash-orl-1a2b', 'a_b', '_.', '_')
    """
    folder = re.sub(r"[/\\\x00]", "_", experiment)
    return "_" + folder[1:] if folder.startswith(".") else folder


@functools.cache
def git_commit() -> str:
    """The commit of the source tree this package runs from, or ``unknown`` (asked once per
    process)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Flatten nested dicts into dotted MLflow params; values are JSON (a string as it is).

    >>> flatten({"a": {"b": 1, "c": [1, 2], "e": "adam"}, "d": None, "f": True})
    {'a.b': '1', 'a.c': '[1, 2]', 'a.e': 'adam', 'd': 'null', 'f': 'true'}
    """
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    out[prefix.rstrip(".")] = obj if isinstance(obj, str) else json.dumps(obj, default=str)
    return out


class Tracker:
    """A thin layer over :class:`mlflow.tracking.MlflowClient` for one store."""

    def __init__(self, uri: str) -> None:
        import logging

        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.uri = uri
        self.client = RetryingClient(mlflow_client(uri))  # SQLite shared by workers

    def experiment(self, name: str) -> str:
        """The id of experiment ``name``, created when missing (by whichever of several
        processes asks first)."""
        from mlflow.exceptions import MlflowException

        check_experiment_name(name)
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location(self.uri, name))
        except MlflowException:
            found = self.client.get_experiment_by_name(name)  # another process created it just now
            if found is None:
                raise
            return found.experiment_id

    def start_run(
        self, experiment_id: str, name: str, tags: dict[str, str], parent_id: str | None = None
    ) -> str:
        tags = dict(tags)
        if parent_id:
            tags[PARENT_RUN] = parent_id
        run = self.client.create_run(experiment_id, run_name=name, tags=tags)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[i : i + 500])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def end(self, run_id: str, status: RunStatus = RunStatus.FINISHED) -> None:
        self.client.set_terminated(run_id, status=status)
