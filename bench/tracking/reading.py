"""The tracking store's read side, for reports and re-evaluation: finished runs as a pandas
frame (columns named as ``mlflow.search_runs`` names them: ``metrics.X``, ``params.X``,
``tags.X``), single runs, and artifacts downloaded without MLflow's progress bars.

Only MLflow's public client API is used; every call retries while SQLite is locked.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench.api.errors import BenchError
from bench.tracking.retry import RetryingClient
from bench.tracking.status import RunStatus

PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
INFO_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")
PAGE = 1000


def download_quietly(client: Any, run_id: str, path: str, folder: Path) -> Path:
    """Download artifact ``path`` of ``run_id`` into ``folder`` without MLflow's progress bar
    (one per small file would only clutter the output); returns the local path."""
    before = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "false"
    try:
        return Path(client.download_artifacts(run_id, path, str(folder)))
    finally:
        if before is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = before


def runs_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """One row per MLflow run: its info, then ``metrics.*`` (NaN when missing), ``params.*``
    and ``tags.*`` (None when missing), as ``mlflow.search_runs`` lays them out.

    >>> from types import SimpleNamespace as NS
    >>> run = NS(info=NS(run_id="r1", experiment_id="0", status="FINISHED", artifact_uri="a",
    ...                  start_time=0, end_time=None),
    ...          data=NS(metrics={"map": 0.5}, params={}, tags={"facehash.bits": "12"}))
    >>> frame = runs_frame([run]); frame[["run_id", "metrics.map", "tags.facehash.bits"]].values.tolist()
    [['r1', 0.5, '12']]
    >>> frame["start_time"].iloc[0].isoformat()
    '1970-01-01T00:00:00+00:00'
    """
    runs = list(runs)
    columns: dict[str, list[Any]] = {name: [] for name in INFO_COLUMNS}
    values: dict[str, dict[int, Any]] = {}
    for i, run in enumerate(runs):
        for name in INFO_COLUMNS:
            value = getattr(run.info, name)
            columns[name].append(pd.to_datetime(value, unit="ms", utc=True) if name.endswith("_time") else value)
        for prefix, data in (("metrics.", run.data.metrics), ("params.", run.data.params), ("tags.", run.data.tags)):
            for key, value in data.items():
                values.setdefault(prefix + key, {})[i] = value
    for name, by_row in values.items():
        missing = float("nan") if name.startswith("metrics.") else None
        columns[name] = [by_row.get(i, missing) for i in range(len(runs))]
    return pd.DataFrame(columns)


def all_experiment_ids(client: Any) -> list[str]:
    """The ids of every active experiment of the store behind ``client``, page by page."""
    ids, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            return ids


class StoreReader:
    """Read-only access to one tracking store."""

    def __init__(self, uri: str) -> None:
        from bench.tracking.sqlite_store import mlflow_client

        self.uri = uri
        self.client = RetryingClient(mlflow_client(uri, write=False))

    def experiment_ids(self, name: str | None = None) -> list[str]:
        """The id of experiment ``name`` (a one-line error lists the known ones), or by default
        the ids of every active experiment."""
        if name is None:
            return all_experiment_ids(self.client)
        found = self.client.get_experiment_by_name(name)
        if found is None:
            known = ", ".join(sorted(e.name for e in self.client.search_experiments())) or "none"
            raise BenchError(f"no experiment '{name}' in {self.uri}; known: {known}")
        return [found.experiment_id]

    def finished_runs(self, experiment: str | None = None, tags: Mapping[str, str] | None = None) -> pd.DataFrame:
        """FINISHED runs of ``experiment`` (default: of every experiment) whose tags equal
        ``tags``, newest first, as :func:`runs_frame` lays them out."""
        return runs_frame(self.search(experiment, tags, status=RunStatus.FINISHED))

    def search(self, experiment: str | None = None, tags: Mapping[str, str] | None = None,
               status: str | None = None) -> list[Any]:
        """Every run of ``experiment`` (default: of every experiment) with ``status`` (any by
        default) whose tags equal ``tags``, newest first, all pages."""
        ids = self.experiment_ids(experiment)
        clauses = [] if status is None else [f"attributes.status = '{status.replace(chr(39), '')}'"]
        for name, value in (tags or {}).items():
            value = str(value).replace("'", "")
            clauses.append(f"tags.`{name}` = '{value}'")
        runs, token = [], None
        while ids:
            page = self.client.search_runs(ids, " and ".join(clauses), max_results=PAGE, page_token=token,
                                           order_by=["attributes.start_time DESC"])
            runs += list(page)
            token = page.token
            if not token:
                break
        return runs

    def find(self, ref: str) -> Any:
        """The run ``ref`` names: a run id, else a run name or an id prefix that is unique in
        the store; a one-line error otherwise."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(ref)
        except MlflowException:
            pass
        named = self.search(tags={"mlflow.runName": ref})
        if not named and len(ref) >= 6:
            named = [r for r in self.search() if r.info.run_id.startswith(ref)]
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(r.info.run_id for r in named[:5])
            raise BenchError(f"'{ref}' names {len(named)} runs in {self.uri} ({ids}); pass a run id")
        raise BenchError(f"no run '{ref}' in the store {self.uri}; `bench runs` lists them (name or id)")

    def run(self, run_id: str) -> Any:
        """The MLflow run ``run_id`` (info, params, metrics, tags); a one-line error when the store lacks it."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException:
            raise BenchError(
                f"no run '{run_id}' in the store {self.uri}; copy a run id from the MLflow UI or pass --tracking-uri"
            ) from None

    def tags(self, run_id: str) -> dict[str, str]:
        """The tags of run ``run_id``."""
        return dict(self.run(run_id).data.tags)

    def artifact_paths(self, run_id: str) -> set[str]:
        """The paths of the artifacts at the top of run ``run_id``'s artifact folder."""
        return {a.path for a in self.client.list_artifacts(run_id)}

    def download(self, run_id: str, path: str, folder: Path) -> Path:
        """Download artifact ``path`` of ``run_id`` into ``folder`` (quietly); its local path."""
        return download_quietly(self.client, run_id, path, folder)


class RunArtifacts:
    """Artifacts of many runs, downloaded on demand into one temporary folder (removed by
    :meth:`close`); each run's listing is read once."""

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader
        self._tmp = tempfile.TemporaryDirectory(prefix="facehash-report-")
        self._listing: dict[str, set[str]] = {}

    @property
    def folder(self) -> Path:
        """The temporary folder (removed by :meth:`close`)."""
        return Path(self._tmp.name)

    def get(self, run_id: str, path: str) -> Path | None:
        """Local path of artifact ``path`` of ``run_id``, or ``None`` when the run lacks it."""
        if run_id not in self._listing:
            self._listing[run_id] = self.reader.artifact_paths(run_id)
        if path not in self._listing[run_id]:
            return None
        folder = self.folder / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        return self.reader.download(run_id, path, folder)

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> RunArtifacts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
