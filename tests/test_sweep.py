"""Sweeps: grid expansion with stable config hashes; a 2x2x2 sweep with 2 worker processes
logs exactly 8 FINISHED child runs under one parent; rerunning skips all 8; Ray gives the
same results."""

from __future__ import annotations

import os

import numpy as np
import pytest
import sweepkit
import yaml
from mlflow.tracking import MlflowClient

from bench.api.errors import BenchError
from bench.running.sweep import SweepFile, expand, load_sweep, override_grid

GRID = {"methods": ["lsh", "sweep-tiny"], "bits": [8, 16], "seeds": [0, 1], "datasets": ["orl"],
        "overrides": {"protocol.epochs": 1}}


def test_grid_expands_to_every_combination_with_stable_distinct_hashes():
    host = sweepkit.host()
    specs = [run.spec for run in expand(host, SweepFile(**GRID))]
    assert [(s.method, s.bits, s.seed) for s in specs] == [
        (m, b, s) for m in ("lsh", "sweep-tiny") for b in (8, 16) for s in (0, 1)]
    hashes = [s.config_hash() for s in specs]
    assert len(set(hashes)) == 8
    assert hashes == [run.spec.config_hash() for run in expand(host, SweepFile(**GRID))]
    assert all(s.protocol.epochs == 1 for s in specs)


def test_swept_override_multiplies_only_the_runs_it_changes():
    sweep = SweepFile(**{**GRID, "seeds": [0], "bits": [8],
                         "overrides": {"protocol.epochs": 1, "sweep-tiny.optimizer.lr": [1e-3, "1e-2"]}})
    specs = [run.spec for run in expand(sweepkit.host(), sweep)]
    # lsh ignores a setting aimed at sweep-tiny: its two identical configs collapse into one
    assert [(s.method, s.method_config.get("optimizer", {}).get("lr")) for s in specs] == [
        ("lsh", None), ("sweep-tiny", 1e-3), ("sweep-tiny", 1e-2)]


def test_split_seeds_run_every_configuration_on_each_split():
    sweep = SweepFile(**{**GRID, "methods": ["lsh"], "bits": [8], "split_seeds": [0, 2],
                         "overrides": {"protocol.split": "open-set"}})
    specs = [run.spec for run in expand(sweepkit.host(), sweep)]
    assert [(s.protocol.split, s.protocol.split_seed, s.seed) for s in specs] == [
        ("open-set", 0, 0), ("open-set", 0, 1), ("open-set", 2, 0), ("open-set", 2, 1)]
    assert len({s.config_hash() for s in specs}) == 4


def test_override_grid_wraps_list_values():
    assert list(override_grid({"a": [1, 2], "b": [[0.5]]})) == [[("a", 1), ("b", [0.5])], [("a", 2), ("b", [0.5])]]


@pytest.mark.parametrize(("text", "message"), [
    ("methods: [lsh]\nbits: [8]\ndatasets: [orl]\nepochz: 3\n", "unknown key 'epochz'"),
    ("methods: [lsh\n", "not valid YAML"),
    ("methods: [lsh]\nbits: [8]\ndatasets: [nope]\n", "unknown dataset 'nope'"),
    ("methods: [lsh]\nbits: [8]\ndatasets: [orl]\noverrides: {optimizer.lr: []}\n", "empty list"),
    ("methods: [lsh]\nbits: [8]\ndatasets: [orl]\nseeds: [0, -1]\n", r"s.yaml: invalid value for 'seeds.1': .*greater than or equal to 0"),
    ("methods: [lsh]\nbits: [8]\ndatasets: [orl]\nseeds: 4294967296\n", r"invalid value for 'seeds.0': .*less than 4294967296"),
    ("methods: [lsh]\nbits: [8]\ndatasets: [orl]\nsplit_seeds: [1, 1]\n", "give each split seed once"),
])
def test_bad_sweep_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(BenchError, match=message) as err:
        expand(sweepkit.host(), load_sweep(path))
    assert "\n" not in str(err.value)


def child_runs(uri: str) -> tuple[list, list]:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, max_results=1000)
    parents = [r for r in runs if r.data.tags.get("facehash.kind") == "parent"]
    return parents, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def codes(output, result):
    folder = output / result.spec.folder_name
    with np.load(folder / "codes.npz") as z:
        return z["gallery_codes"], z["query_codes"]


@pytest.fixture(scope="module")
def processes_sweep(tmp_path_factory):
    """The 2x2x2 sweep through ``bench sweep --executor processes --max-parallel 2``."""
    from typer.testing import CliRunner

    from bench.cli import app

    tmp = tmp_path_factory.mktemp("sweep")
    path = tmp / "grid.yaml"
    path.write_text(yaml.safe_dump(GRID))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    args = ["sweep", str(path), "--executor", "processes", "--max-parallel", "2", "--tracking-uri", uri,
            "--output", str(tmp / "out")]
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("bench.api.pluginhost.default_host", sweepkit.host)  # bench.cli.sweep imports it when run
        first = runner.invoke(app, args)
        second = runner.invoke(app, args)
    return uri, tmp / "out", first, second


def test_processes_sweep_logs_8_finished_children_under_one_parent(processes_sweep):
    uri, _, first, _ = processes_sweep
    assert first.exit_code == 0, first.output
    assert "ran 8 (8 finished, 0 failed), skipped 0" in first.output
    parents, children = child_runs(uri)
    assert len(parents) == 1 and len(children) == 8
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert {r.info.status for r in children} == {"FINISHED"}
    assert len({r.data.tags["facehash.config_hash"] for r in children}) == 8


def test_rerunning_the_sweep_skips_all_8(processes_sweep):
    uri, _, _, second = processes_sweep
    assert second.exit_code == 0, second.output
    assert "ran 0 (0 finished, 0 failed), skipped 8" in second.output
    parents, children = child_runs(uri)
    assert len(parents) == 1 and len(children) == 8  # the same parent, nothing added


@pytest.mark.ray
def test_ray_executor_gives_the_same_results(processes_sweep, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from bench.running.executors.ray_cluster import RayExecutor

    # Ray workers import the test plugin by name
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(sweepkit.HERE), os.environ.get("PYTHONPATH", "")]))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        outcome = sweepkit.run_sweep(f"sqlite:///{tmp_path / 'ray.db'}", tmp_path / "out", RayExecutor(), **GRID)
    finally:
        ray.shutdown()
    assert outcome.summary() == "ran 8 (8 finished, 0 failed), skipped 0"
    uri, output, _, _ = processes_sweep
    _, children = child_runs(uri)
    by_hash = {r.data.tags["facehash.config_hash"]: r for r in children}
    for result in outcome.results:
        reference = by_hash[result.spec.config_hash()]
        assert result.metrics["map"] == reference.data.metrics["map"]
        expected = codes(output, result)
        assert all(np.array_equal(a, b) for a, b in zip(codes(tmp_path / "out", result), expected, strict=True))
