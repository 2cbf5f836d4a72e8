"""Resolve once, pass it down: one ``bench run`` hashes the dataset's pixels once and resolves
its device and acceleration once, however many runs it plans; a prepared run crosses to
worker processes as its spec only; the checksum kept on a FaceData follows its arrays."""

from __future__ import annotations

import pickle
import sys

import numpy as np
from mlflow.tracking import MlflowClient

from bench.api.pluginhost import default_host
from bench.config.protocol import ProtocolConfig
from bench.data import cache, loading
from bench.data.faces import split_checksum
from bench.data.loading import load_data
from bench.running.executors.base import Task
from bench.running.planning import plan_runs
from bench.running.request import RunRequest

from conftest import ROOT, install_plugin


def count_calls(monkeypatch, module_name: str, name: str, skip: tuple[str, ...] = ()) -> list[int]:
    """Count the calls of function ``name`` of ``module_name``, wherever it was imported
    (except from the modules under the packages in ``skip``)."""
    original = getattr(sys.modules[module_name], name)
    calls: list[int] = []

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    for module_name_, module in list(sys.modules.items()):
        if getattr(module, name, None) is original and not module_name_.startswith(skip):
            monkeypatch.setattr(module, name, counted)
    return calls


def test_one_bench_run_hashes_the_pixels_once_and_resolves_once(plugin_site, cli, store, monkeypatch):
    install_plugin(plugin_site, "minimal-plugin", "minimal_plugin", (ROOT / "examples" / "minimal_plugin.py").read_text())
    cache.prepare(default_host(), "orl", None, {})  # the cache entry exists, as after any first run
    monkeypatch.setattr(loading, "_LOADED", {})  # nothing loaded yet in this process
    hashes = count_calls(monkeypatch, "bench.data.faces", "split_checksum")
    # evaluation re-reads the device name it is handed (a string); the run resolves it once
    devices = count_calls(monkeypatch, "bench.config.device", "resolve_device", skip=("bench.evaluation",))
    accelerations = count_calls(monkeypatch, "bench.training.acceleration", "resolve_acceleration")
    code, out, err = cli("run", "--method", "lsh,tiny-hash", "--bits", "8,16", "--seeds", "0,1",
                         "--epochs", "1", "--tracking-uri", store)
    assert code == 0, err
    assert "ran 8 (8 finished, 0 failed)" in out  # 4 fitted and 4 deep runs
    assert len(hashes) == 1  # opening the cache entry checks it; every later use reads the kept value
    assert (len(devices), len(accelerations)) == (1, 1)  # once for the whole plan


def test_finished_runs_carry_the_split_checksum_of_their_data(cli, store):
    code, _, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", store)
    assert code == 0, err
    data = load_data(default_host(), ProtocolConfig(), None)
    client = MlflowClient(store)
    [run] = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
             if "mlflow.parentRunId" in r.data.tags]
    assert run.data.tags["facehash.split_checksum"] == split_checksum(data.images, data.labels, data.split)


def test_replacing_the_pixels_forgets_the_kept_checksum():
    host = default_host()
    full = load_data(host, ProtocolConfig(), None)  # checked against its cache entry: checksum kept
    small = load_data(host, ProtocolConfig(input_size=16), None)  # the same entry, resized after loading
    assert small.images.shape[2:] == (16, 16)
    assert small.checksum() == split_checksum(small.images, small.labels, small.split) != full.checksum()
    small.split = np.where(small.split == 1, 0, small.split).astype(np.int8)
    assert small.checksum() == split_checksum(small.images, small.labels, small.split)


def test_a_task_ships_its_spec_and_leaves_the_prepared_run_behind():
    [run] = plan_runs(default_host(), RunRequest(methods=["lsh"], bits=[8], seeds=[0], protocol=ProtocolConfig()))
    task = Task(0, run.spec, "run-id", "sqlite:///x.db", "0", "parent", "out", prepared=run)
    shipped = pickle.loads(pickle.dumps(task))
    assert shipped.prepared is None and shipped.spec == run.spec and shipped.run_id == "run-id"
    assert task.prepared is run
