"""The harness's training loop: determinism, model selection on validation, failures."""

import importlib.util

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from bench import hookimpl
from bench.api.interfaces import LossPart
from bench.api.pluginhost import load_plugins
from bench.cli.parsing import parse_loss
from bench.config.protocol import ProtocolConfig
from bench.data.loading import load_data
from bench.running.execution import compute_run
from bench.running.executors.coordinator import execute_runs
from bench.running.executors.local import LocalExecutor
from bench.running.planning import plan_runs
from bench.running.request import PartChoice, RunRequest
from bench.tracking.client import Tracker

from conftest import ROOT


def example_plugin():
    spec = importlib.util.spec_from_file_location("minimal_plugin_t", ROOT / "examples" / "minimal_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ExplodingLoss(LossPart):
    """Returns inf after the first step (a divergent run)."""

    def __init__(self, ctx, output_dims):
        super().__init__()
        self.calls = 0

    def forward(self, outputs, context):
        self.calls += 1
        return outputs["u"].sum() * (float("inf") if self.calls > 1 else 1.0)


class CrashingLoss(LossPart):
    def __init__(self, ctx, output_dims):
        super().__init__()

    def forward(self, outputs, context):
        raise RuntimeError("plugin bug")


class FailingParts:
    @hookimpl
    def register_losses(self, register):
        register("exploding", ExplodingLoss)
        register("crashing", CrashingLoss)


@pytest.fixture(scope="module")
def host():
    return load_plugins(extra_plugins={"example": example_plugin(), "failing": FailingParts()})


@pytest.fixture(scope="module")
def data(host):
    return load_data(host, ProtocolConfig(), None)


def one_run(host, data, epochs=2, seed=0, **kw):
    [run] = plan_runs(host, RunRequest(methods=["tiny-hash"], bits=[16], seeds=[seed],
                                       protocol=ProtocolConfig(epochs=epochs), parts=PartChoice(**kw)), data=data)
    return run


def test_same_seed_same_codes_and_different_seed_differs(host, data):
    a = compute_run(one_run(host, data))
    b = compute_run(one_run(host, data))
    c = compute_run(one_run(host, data, seed=1))
    assert np.array_equal(a.gallery_codes, b.gallery_codes)
    assert np.array_equal(a.query_codes, b.query_codes)
    assert not np.array_equal(a.gallery_codes, c.gallery_codes)


def test_selection_uses_validation_only(host, data):
    logged = []
    run = one_run(host, data, epochs=4, sets=[("training.validate_every", 2)])
    computed = compute_run(run, log_metrics=lambda m, step: logged.append((step, m)))
    val = {step: m["val_map"] for step, m in logged if "val_map" in m}
    assert sorted(val) == [2, 4]
    best = max(val, key=val.get)
    assert computed.extra_metrics["selected_epoch"] == best
    assert all("loss/ce_code" in m and "loss/quantization" in m for _, m in logged)


@pytest.mark.parametrize(("loss", "reason"), [("exploding", "non-finite loss at step 2"),
                                              ("crashing", "RuntimeError: plugin bug")])
def test_failing_run_is_marked_failed_with_reason(host, data, tmp_path, loss, reason):
    uri = f"sqlite:///{tmp_path / 'f.db'}"
    tracker = Tracker(uri)
    experiment = tracker.experiment("failures")
    [result] = execute_runs(host, [one_run(host, data, loss=parse_loss(loss))], LocalExecutor(), tracker,
                            experiment, tmp_path / "out").results
    assert result.status == "FAILED" and reason in result.reason
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.info.status == "FAILED" and reason in run.data.tags["failure_reason"]
    assert "traceback.txt" in {a.path for a in MlflowClient(uri).list_artifacts(result.run_id)}
