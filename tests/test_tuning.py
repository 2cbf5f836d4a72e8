"""``bench tune``: search spaces as data, trials that never see the queries, a study that a
SIGKILLed process leaves behind and the same command finishes, the best configuration rerun
through the normal run path, Ray Tune on a local Ray, and ``bench leaderboard --tuned``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import optuna
import pytest
import sweepkit
import yaml
from mlflow.tracking import MlflowClient

from bench.api.errors import BenchError
from bench.api.search import Dimension, log_uniform, parse_space
from bench.config.protocol import ProtocolConfig
from bench.config.settings import method_config
from bench.data.faces import QUERY, TRAIN, VAL, FaceData, without_queries
from bench.running.tuning.space import corners, read_space_file
from bench.running.tuning.trial import KILL_AT_TRIAL_ENV

PLUGIN = '''
from bench import hookimpl
from bench.api.search import log_uniform
from sweepkit import DropoutLinear, FeatureL2, Tiny


class TuneTiny(Tiny):
    """The sweep tests' tiny method, with a search space declared next to its config."""

    search_space = {"optimizer.lr": log_uniform(1e-4, 3e-2), "loss.quantization.weight": log_uniform(1e-3, 1.0)}


@hookimpl
def register_backbones(register):
    register("sweep-mlp", DropoutLinear)


@hookimpl
def register_losses(register):
    register("sweep-l2", FeatureL2)


@hookimpl
def register_methods(register):
    register("tune-tiny", TuneTiny())
'''

TUNE = ["tune", "--method", "tune-tiny", "--trials", "6", "--epochs", "2", "--bits", "8", "--final-seeds", "0"]


@pytest.mark.parametrize("name", ["dcbh", "ddh", "dsh", "dcdh", "dpsh", "hashnet", "greedyhash", "csq", "orthohash"])
def test_declared_spaces_set_real_config_fields_at_both_ends(name):
    from bench.api.pluginhost import default_host

    method = default_host().methods.get(name)
    assert method.search_space, f"{name} declares no search space"
    for params in corners(method.search_space):
        config = method_config(name, method, ProtocolConfig(), sets=list(params.items()))
        flat = config.model_dump(mode="python")
        for key, value in params.items():
            parts = key.split(".")
            if parts[0] == "loss":
                term = next(t for t in flat["losses"] if t["name"] == parts[1])
                got = term[parts[2]] if parts[2] in term else term["options"][parts[2]]
            else:
                got = flat[parts[0]][parts[1]]
            assert got == pytest.approx(value), (name, key)


def test_bad_dimensions_and_space_files_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="'optimizer.lr': .*low > 0"):
        parse_space({"optimizer.lr": {"kind": "float", "low": 0.0, "high": 1.0, "log": True}}, "f")
    with pytest.raises(ValueError, match="choices"):
        Dimension(kind="categorical")
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"ddh": {"optimizer.lr": {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True}},
                                    "dsh": {"optimizer.lr": {"kind": "float", "low": 1e-3, "high": 1e-1}}}))
    spaces = read_space_file(path, ["ddh", "dsh"])
    assert spaces["ddh"]["optimizer.lr"] == log_uniform(1e-4, 1e-2) and not spaces["dsh"]["optimizer.lr"].log
    path.write_text("optimizer.lr: {kind: float, low: 1, high: 0}\n")
    with pytest.raises(BenchError, match="low must be below high"):
        read_space_file(path, ["ddh"])


def test_the_trial_view_holds_no_query_image_and_refuses_the_query_part():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 1, 4, 4), dtype=np.uint8)
    labels, split = np.repeat([0, 1, 2], 4), np.tile([TRAIN, TRAIN, VAL, QUERY], 3)
    full = FaceData("d", images, labels, split, ["a", "b", "c"])
    view = without_queries(full)
    assert view.counts() == {"train": 6, "val": 3, "query": 0} and view.num_classes == 3
    for part in (TRAIN, VAL):
        assert np.array_equal(view.part(part)[0], full.part(part)[0])
    query_bytes = {image.tobytes() for image in full.part(QUERY)[0]}
    assert not query_bytes & {image.tobytes() for image in view.images}
    with pytest.raises(BenchError, match="never see the queries"):
        view.part(QUERY)


@pytest.fixture
def tiny_plugin(plugin_site, monkeypatch):
    from conftest import install_plugin

    install_plugin(plugin_site, "tune-tiny-plugin", "tune_tiny_plugin", PLUGIN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(sweepkit.HERE), os.environ["PYTHONPATH"]]))
    monkeypatch.syspath_prepend(str(sweepkit.HERE))
    return plugin_site


def study_trials(tmp_path):
    names = optuna.get_all_study_names(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(names) == 1, names
    study = optuna.load_study(study_name=names[0], storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    return study, study.get_trials(deepcopy=False)


def runs_by_kind(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    out: dict[str, list] = {}
    for run in runs:
        kind = run.data.tags.get("facehash.kind") or ("tuned" if "facehash.tuned.study" in run.data.tags else "run")
        out.setdefault(kind, []).append(run)
    return client, out


def test_a_killed_tune_is_finished_by_the_same_command(cli, tiny_plugin, tmp_path):
    env = {**os.environ, KILL_AT_TRIAL_ENV: "3"}
    killed = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *TUNE], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stdout + killed.stderr  # SIGKILLed inside trial 3
    _, trials = study_trials(tmp_path)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 + ["RUNNING"]  # no pruning in the first 3

    code, out, err = cli(*TUNE)
    assert code == 0, out + err
    assert "recovered trial(s) [3]" in err
    study, trials = study_trials(tmp_path)
    states = [t.state.name for t in trials]
    assert states[3] == "FAIL" and trials[3].user_attrs["stale"]
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 6 and len(states) == 7
    retry = trials[4]
    assert retry.user_attrs["retry_of"] == 3 and retry.params == trials[3].params
    first = [t.params for t in trials[:4]]
    assert all(t.params not in first for t in trials[5:])  # the resumed sampler draws new values

    client, kinds = runs_by_kind(tmp_path)
    [parent] = kinds["tuning"]
    assert parent.info.status == "FINISHED" and parent.data.tags["facehash.tuned.trials"] == "6"
    trial_runs = kinds["trial"]
    assert sorted(r.info.status for r in trial_runs).count("KILLED") == 1 and len(trial_runs) == 7
    assert {r.data.tags["mlflow.parentRunId"] for r in trial_runs} == {parent.info.run_id}
    for run in trial_runs:  # trials are scored on the validation split: no query metric at all
        assert "map" not in run.data.metrics and "facehash.config_hash" not in run.data.tags
    complete = [r for r in trial_runs if r.data.tags.get("facehash.tune.trial_state") == "complete"]
    history = client.get_metric_history(complete[0].info.run_id, "val_map")
    assert [m.step for m in history] == [1, 2]
    by_trial = {r.data.tags["facehash.tune.trial"]: r for r in complete}
    for t in trials:  # the study's value is the trial run's last objective (the kept weights' val mAP)
        if t.state.name == "COMPLETE":
            assert by_trial[str(t.number)].data.metrics["objective"] == pytest.approx(t.value, abs=1e-12)

    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    [final] = kinds["tuned"]
    assert final.info.status == "FINISHED" and "map" in final.data.metrics
    assert final.data.tags["facehash.tuned.best_trial"] == str(best.number)
    assert json.loads(final.data.tags["facehash.tuned.params"]) == best.params
    assert final.data.params["method.optimizer.lr"] == str(best.params["optimizer.lr"])

    code, out, err = cli(*TUNE)  # a finished study: no new trial, the final run is skipped
    assert code == 0 and "6 finished trial(s) (0 now)" in out and "skipped 1" in out, out + err
    assert len(study_trials(tmp_path)[1]) == 7

    code, out, err = cli("run", "--method", "tune-tiny", "--bits", "8", "--epochs", "2")
    assert code == 0, out + err
    code, out, err = cli("leaderboard", "--tuned", "--format", "json", "--no-log")
    assert code == 0, out + err
    [row] = json.loads(out)
    default = next(r for r in runs_by_kind(tmp_path)[1]["run"] if r.data.tags["facehash.overrides"] == "{}")
    assert row["default"].startswith(f"{default.data.metrics['map']:.4f} n=1")
    assert row["tuned"].startswith(f"{final.data.metrics['map']:.4f} n=1")
    assert row["delta"] == pytest.approx(final.data.metrics["map"] - default.data.metrics["map"])
    assert (row["trials"], row["epochs_per_trial"]) == ("6", "2")


def test_bad_tune_input_is_one_line_exit_2_and_writes_nothing(cli, tmp_path):
    for args, message in [
        (["--method", "lsh"], "bench tune tunes deep methods"),
        (["--method", "ddh", "--set", "optimizer.lrr=1"], "unknown key"),
        (["--method", "ddh", "--executor", "processes"], "local (Optuna) or ray"),
    ]:
        code, _, err = cli("tune", *args, "--trials", "1", "--epochs", "1")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    space = tmp_path / "space.yaml"
    space.write_text("optimizer.nope: {kind: float, low: 0.1, high: 0.2}\n")
    code, _, err = cli("tune", "--method", "ddh", "--space", str(space), "--trials", "1", "--epochs", "1")
    assert code == 2 and "optimizer.nope" in err, err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


@pytest.mark.ray
def test_ray_tune_runs_the_trials_of_the_same_study_and_reruns_the_best(cli, tiny_plugin, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        code, out, err = cli("tune", "--method", "tune-tiny", "--trials", "3", "--epochs", "1", "--bits", "8",
                             "--final-seeds", "0", "--executor", "ray")
    finally:
        ray.shutdown()
    assert code == 0, out + err
    _, trials = study_trials(tmp_path)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    _, kinds = runs_by_kind(tmp_path)
    assert len(kinds["trial"]) == 3 and {r.info.status for r in kinds["trial"]} == {"FINISHED"}
    assert {r.data.tags["facehash.tune.executor"] for r in kinds["trial"]} == {"ray"}
    [final] = kinds["tuned"]
    best = max(trials, key=lambda t: t.value)
    assert final.info.status == "FINISHED" and json.loads(final.data.tags["facehash.tuned.params"]) == best.params


def test_split_seeds_tune_each_split_and_the_comparison_pools_them(cli, tiny_plugin, tmp_path):
    split = ["--split", "open-set", "--split-seeds", "0,1", "--bits", "8", "--epochs", "1"]
    code, out, err = cli("tune", "--method", "tune-tiny", "--trials", "2", "--final-seeds", "0", *split)
    assert code == 0, out + err
    names = sorted(optuna.get_all_study_names(f"sqlite:///{tmp_path / 'optuna.db'}"))
    assert len(names) == 2 and names[1] == names[0] + "-k1"  # one study per split
    _, kinds = runs_by_kind(tmp_path)
    trial_splits = {r.data.tags["facehash.tune.study"]: r.data.tags["facehash.split_seed"] for r in kinds["trial"]}
    assert trial_splits == {names[0]: "0", names[1]: "1"}  # each study trains and validates on its split
    finals = sorted(kinds["tuned"], key=lambda r: r.data.tags["facehash.split_seed"])
    assert [(r.data.tags["facehash.split_seed"], r.data.tags["facehash.tuned.study"]) for r in finals] == [
        ("0", names[0]), ("1", names[1])]
    assert {r.data.tags["facehash.tuned.family"] for r in finals} == {names[0]}

    code, out, err = cli("run", "--method", "tune-tiny", *split)
    assert code == 0, out + err
    code, out, err = cli("leaderboard", "--tuned", "--format", "json", "--no-log")
    assert code == 0, out + err
    [row] = json.loads(out)  # the two splits' tuned runs pooled, as the default runs are
    defaults = [r.data.metrics["map"] for r in runs_by_kind(tmp_path)[1]["run"]]
    tuned = [r.data.metrics["map"] for r in finals]
    assert len(defaults) == 2 and row["tuned"].startswith(f"{np.mean(tuned):.4f} ± ") and row["tuned"].endswith("n=2")
    assert row["delta"] == pytest.approx(np.mean(tuned) - np.mean(defaults), abs=1e-9)  # JSON keeps 10 digits
    assert row["study"] == names[0] and row["tuned_params"].startswith("k0: {") and "; k1: {" in row["tuned_params"]


@pytest.mark.ray
def test_a_killed_ray_tune_is_finished_by_the_same_command(tiny_plugin, tmp_path):
    """SIGKILL the whole ``bench tune --executor ray`` process group (driver and its local Ray)
    once the study holds 3 finished trials; the same command then finishes the study with 6."""
    import signal
    import time

    pytest.importorskip("ray")
    command = [sys.executable, "-c", "from bench.cli import main; main()", *TUNE, "--executor", "ray",
               "--max-parallel", "1"]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    storage, deadline = f"sqlite:///{tmp_path / 'optuna.db'}", time.monotonic() + 600
    try:
        while time.monotonic() < deadline and first.poll() is None:
            time.sleep(1)
            names = optuna.get_all_study_names(storage) if (tmp_path / "optuna.db").exists() else []
            if names and sum(t.state.name == "COMPLETE" for t in
                             optuna.load_study(study_name=names[0], storage=storage).get_trials(deepcopy=False)) >= 3:
                break
        assert first.poll() is None, "bench tune ended before it could be killed"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    _, trials = study_trials(tmp_path)
    assert 3 <= sum(t.state.name == "COMPLETE" for t in trials) < 6

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    _, trials = study_trials(tmp_path)
    states = [t.state.name for t in trials]
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 6, states
    assert all(s in ("COMPLETE", "PRUNED", "FAIL") for s in states), states  # nothing left RUNNING
    _, kinds = runs_by_kind(tmp_path)
    [final] = kinds["tuned"]
    assert final.info.status == "FINISHED"
    assert {r.info.status for r in kinds["trial"]} <= {"FINISHED", "KILLED"}
