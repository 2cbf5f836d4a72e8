"""What a run records besides its numbers: MLflow's standard tags (git commit, user), the CPU
it ran on and whether that CPU computes bf16 natively, and its params as JSON, only those that
apply (no momentum for Adam, no harness-standard settings under the method's own standard)."""

from __future__ import annotations

import json

import torch

from bench.api.pluginhost import default_host
from bench.config.settings import build_protocol
from bench.running.identity import execution_tags, run_params
from bench.running.planning import plan_runs
from bench.running.request import RunRequest
from bench.tracking import tags as T
from bench.tracking.client import flatten
from bench.training.acceleration import cpu_has_native_bf16

TINY = {"identities": 4, "images_per_identity": 5, "val": 1, "query": 1}


def _runs(standard: str, methods=("dsh", "ddh", "dcbh", "lsh")):
    protocol = build_protocol({"dataset": "synthfaces", "epochs": 1, "standard": standard}, {}, TINY)
    return plan_runs(default_host(), RunRequest(methods=list(methods), bits=[12], seeds=[0], protocol=protocol, device="cpu"))


def test_params_are_json_and_only_those_that_apply():
    seen = set()
    for run in _runs("as-published"):
        params = flatten(run_params(run.spec))
        assert not any(k.startswith("protocol.harness_standard.") for k in params)
        name = params.get("method.optimizer.name")
        if name is not None:
            seen.add(name)
            assert ("method.optimizer.momentum" in params) == (name == "sgd"), (run.spec.method, params)
            assert ("method.optimizer.betas" in params) == (name in ("adam", "adamw"))
        assert all(_is_json_or_text(v) for v in params.values()), params
        assert "None" not in params.values() and "True" not in params.values() and "False" not in params.values()
    assert seen  # the guard: deep methods with optimizers were checked
    [harness] = _runs("harness-standard", methods=("dsh",))
    params = flatten(run_params(harness.spec))
    assert params["protocol.harness_standard.batch_size"] == "128"
    assert json.loads(params["protocol.harness_standard.optimizer.betas"]) == [0.9, 0.999]
    assert "protocol.harness_standard.optimizer.momentum" not in params  # its optimizer is Adam


def _is_json_or_text(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return value[:1] not in "[({"
    return True


def test_tags_name_the_commit_user_cpu_and_native_bf16():
    run = _runs("as-published", methods=("lsh",))[0]
    assert run.tags[T.MLFLOW_USER]
    if run.tags[T.GIT_COMMIT] != "unknown":
        assert run.tags[T.MLFLOW_GIT_COMMIT] == run.tags[T.GIT_COMMIT]
    tags = execution_tags(torch.device("cpu"), None)
    assert tags[T.CPU_BF16_NATIVE] == str(cpu_has_native_bf16()).lower()
    with open("/proc/cpuinfo") as fh:
        model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    assert tags[T.CPU_MODEL] == model


def test_a_dataset_asks_its_runs_to_carry_data_tags():
    """``FaceData.meta["run_tags"]`` (e.g. the alignment's fallback count) become
    ``facehash.data.<name>`` tags of every run on the data; none without it."""
    from bench.data.faces import RUN_TAGS

    host = default_host()
    protocol = build_protocol({"dataset": "synthfaces", "epochs": 1}, {}, TINY)
    data = host.datasets.build("synthfaces", None, **TINY)
    plain = plan_runs(host, RunRequest(methods=["lsh"], bits=[12], seeds=[0], protocol=protocol, device="cpu"), data=data)
    assert not any(k.startswith(T.DATA_PREFIX) for k in plain[0].tags)
    data.meta[RUN_TAGS] = {"alignment.fallback": 3}
    tagged = plan_runs(host, RunRequest(methods=["lsh"], bits=[12], seeds=[0], protocol=protocol, device="cpu"), data=data)
    assert tagged[0].tags[f"{T.DATA_PREFIX}alignment.fallback"] == "3"
