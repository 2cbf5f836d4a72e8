"""Executors: failures stay inside their run (divergence, plugin exception, a worker killed)
while the sweep goes on and exits non-zero listing them; several processes share one SQLite
store without losing or duplicating a run; executor and server options fail clearly."""

from __future__ import annotations

import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import sqlite_writer
import sweepkit
import yaml
from mlflow.tracking import MlflowClient

from bench.api.errors import BenchError


def test_failures_are_isolated_and_listed(tmp_path, cli, monkeypatch):
    sweep = {"methods": ["sweep-tiny", "sweep-broken", "sweep-dying"], "bits": [8], "seeds": [0],
             "datasets": ["orl"],
             "overrides": {"protocol.epochs": 1, "sweep-tiny.optimizer.lr": [1e-3, 1e20]}}
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(sweep))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setattr("bench.api.pluginhost.default_host", sweepkit.host)  # imported by the command when run
    code, out, err = cli("sweep", str(path), "--executor", "processes", "--max-parallel", "2",
                         "--tracking-uri", uri, "--output", str(tmp_path / "out"))
    assert code == 1
    assert "ran 4 (1 finished, 3 failed), skipped 0" in out
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    children = {(r.info.run_name, r.data.params.get("method.optimizer.lr")): r for r in runs
                if "mlflow.parentRunId" in r.data.tags}
    status = {key: (r.info.status, r.data.tags.get("failure_reason", "")) for key, r in children.items()}
    assert status == {
        ("sweep-tiny[optimizer.lr=0.001]-8b-s0", "0.001"): ("FINISHED", ""),
        ("sweep-tiny[optimizer.lr=1e+20]-8b-s0", "1e+20"): ("FAILED", "non-finite loss at step 2"),
        ("sweep-broken-8b-s0", "0.001"): ("FAILED", "RuntimeError: plugin bug in sweep-mlp"),
        ("sweep-dying-8b-s0", "0.001"): ("FAILED", "worker process died (exit code -9)"),
    }
    broken = children[("sweep-broken-8b-s0", "0.001")].info.run_id
    trace = Path(client.download_artifacts(broken, "traceback.txt", str(tmp_path))).read_text()
    assert "Traceback" in trace and "RuntimeError: plugin bug in sweep-mlp" in trace
    for line in ("non-finite loss at step 2", "RuntimeError: plugin bug", "worker process died"):
        assert line in err
    [parent] = [r for r in runs if r.data.tags.get("facehash.kind") == "parent"]
    assert parent.info.status == "FAILED" and parent.data.tags["facehash.runs_failed"] == "3"


def test_four_processes_logging_25_runs_each_to_one_sqlite_store(tmp_path, capsys):
    from bench.tracking.client import Tracker

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    experiment = Tracker(uri).experiment("concurrency")  # the coordinator creates the store first
    with ProcessPoolExecutor(4, mp_context=mp.get_context("spawn")) as pool:
        outcomes = list(pool.map(sqlite_writer.log_runs, [uri] * 4, [experiment] * 4, range(4), [25] * 4))
    assert [errors for _, errors in outcomes] == [0, 0, 0, 0]
    client = MlflowClient(uri)
    runs = client.search_runs([experiment], max_results=1000)
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(f"w{w}-r{i}" for w in range(4) for i in range(25))  # 100, none twice
    for r in runs:
        i = int(r.data.tags["i"])
        assert r.info.status == "FINISHED" and r.data.tags["done"] == "yes"
        assert r.data.params == {f"p{k}": str(k * i) for k in range(8)}
        assert r.data.metrics == {"loss": pytest.approx(1 / 3), "i": float(i)}
    sample = runs[0].info.run_id
    assert [m.step for m in client.get_metric_history(sample, "loss")] == [0, 1, 2]
    with capsys.disabled():
        print(f"\n4 writers x 25 runs: 100 runs stored, lock retries per writer {[r for r, _ in outcomes]}")


def test_unknown_executor_and_misplaced_options_are_one_line_errors():
    from bench.cli.execution import build_executor

    host = sweepkit.host()
    with pytest.raises(BenchError, match=r"unknown executor 'rey'.*did you mean 'ray'"):
        build_executor(host, "rey", None, None)
    with pytest.raises(BenchError, match="--max-parallel does not apply to executor 'local'"):
        build_executor(host, "local", 2, None)
    with pytest.raises(BenchError, match="--ray-address does not apply to executor 'processes'"):
        build_executor(host, "processes", 2, "auto")
    assert build_executor(host, "processes", 3, None).max_parallel == 3


def test_missing_ray_says_how_to_install_it(monkeypatch):
    from bench.running.executors.ray_cluster import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BenchError, match=r"pip install 'facehash-bench\[ray\]'"):
        import_ray()


def test_server_is_local_and_lean_and_warns_when_exposed(cli, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: calls.append((argv, env)))
    code, _, err = cli("server", "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}")
    assert code == 0 and "warning" not in err
    argv, env = calls[-1]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--workers") + 1] == "1"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    code, _, err = cli("server", "--host", "0.0.0.0", "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}")
    assert code == 0 and "no authentication" in err
    code, _, err = cli("server", "--backend-store-uri", "mysql://x/y")
    assert code == 2 and "use sqlite:///PATH/mlflow.db or postgresql://" in err
