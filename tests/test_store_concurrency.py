"""Concurrency on one SQLite store, each case ten times in a row: four processes opening a
store nobody created yet (MLflow's schema is created under the store's file lock, so none
is lost and the store stays healthy), and two identical commands started together (each
configuration trained exactly once: one process trains it, the other waits and skips it)."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
import sqlite_writer
import sweepkit
from mlflow.tracking import MlflowClient

TRIALS = range(10)


@pytest.fixture(scope="module")
def four_writers():
    """Four spawned processes, reused by every trial (each imports MLflow once)."""
    with ProcessPoolExecutor(4, mp_context=mp.get_context("spawn")) as pool:
        assert len(set(pool.map(sqlite_writer.warm_up, [1.0] * 4))) == 4
        yield pool


@pytest.fixture(scope="module")
def two_commands():
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        yield pool


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An empty store made once (creating MLflow's schema takes seconds; claims are tested here)."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.mark.parametrize("trial", TRIALS)
def test_four_processes_on_a_new_store_lose_nothing_and_leave_it_healthy(four_writers, tmp_path, trial):
    db = tmp_path / "new" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    start = time.time() + 0.5
    ids = list(four_writers.map(sqlite_writer.first_use, [uri] * 4, range(4), [start] * 4))
    assert len(set(ids)) == 4
    tables = {name for (name,) in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not [t for t in tables if t.startswith("_alembic_tmp_")], tables
    client = MlflowClient(uri)  # opens (and verifies the schema of) the store
    [experiment] = [e for e in client.search_experiments() if e.name == "race"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["w0", "w1", "w2", "w3"]
    assert {r.info.run_id: r.data.metrics["x"] for r in runs} == {i: float(w) for w, i in enumerate(ids)}
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.parametrize("trial", TRIALS)
def test_two_identical_commands_train_each_configuration_once(two_commands, empty_store, tmp_path, trial):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start = time.time() + 1.0
    a, b = two_commands.map(sweepkit.identical_command, [uri] * 2, [str(tmp_path / "out")] * 2, [start] * 2)
    for (status_a, id_a, name), (status_b, id_b, _) in zip(a, b, strict=True):
        assert sorted([status_a, status_b]) == ["FINISHED", "SKIPPED"], (name, a, b)
        assert id_a == id_b  # the skipped one names the run the other process trained
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("identical").experiment_id
    children = [r for r in client.search_runs([experiment]) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.info.run_name for r in children) == ["sweep-tiny-16b-s0", "sweep-tiny-8b-s0"]
    for run in children:
        assert run.info.status == "FINISHED" and "facehash.resumed_from_epoch" not in run.data.tags
        history = client.get_metric_history(run.info.run_id, "loss/total")
        assert [m.step for m in history] == [1, 2]  # two epochs, logged once each
        assert len(client.get_metric_history(run.info.run_id, "map")) == 1


def test_a_live_owner_is_skipped_or_waited_for_and_a_dead_one_taken_over(empty_store, tmp_path):
    import os
    import socket

    from bench.running.executors.coordinator import execute_runs, open_run
    from bench.running.executors.local import LocalExecutor
    from bench.running.sweep import SweepFile, expand
    from bench.tracking.client import Tracker

    shutil.copy(empty_store, tmp_path / "mlflow.db")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = tracker.experiment("owners")
    host = sweepkit.host()
    runs = expand(host, SweepFile(methods=["sweep-tiny"], bits=[8], datasets=["orl"],
                                  overrides={"protocol.epochs": 1}))
    run_id = open_run(runs[0], tracker, experiment, None)
    other = f"{socket.gethostname()}:{os.getppid()}:other-token"  # a live process that is not this one
    tracker.set_tags(run_id, {"facehash.owner": other, "facehash.heartbeat": str(time.time())})
    tracker.client.update_run(run_id, status="RUNNING")

    def execute(**options):
        return execute_runs(host, runs, LocalExecutor(), tracker, experiment, tmp_path / "out", poll_seconds=0.1,
                            **options).results[0]

    skipped = execute(if_running="skip")
    assert skipped.status == "SKIPPED" and other in skipped.reason
    assert tracker.client.get_run(run_id).info.status == "RUNNING"  # untouched
    tracker.set_tags(run_id, {"facehash.heartbeat": str(time.time() - 120)})  # its owner stopped beating
    taken = execute()
    assert (taken.status, taken.run_id) == ("FINISHED", run_id)
    assert tracker.client.get_run(run_id).data.tags["facehash.owner"].startswith(f"{socket.gethostname()}:{os.getpid()}:")
