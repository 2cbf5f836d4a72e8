"""Resume: a run killed with SIGKILL after its second epoch checkpoint continues in the same
MLflow run and ends bit-identical to an uninterrupted run; checkpoints load with
``weights_only=True`` and only for the run that wrote them."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sweepkit
import torch
from mlflow.tracking import MlflowClient

from bench.training.checkpoint import atomic_save
from bench.training.loop import LoopState
from bench.training.resume import RESUME_FILE, Resumer

SWEEP = {"methods": ["sweep-tiny"], "bits": [8], "seeds": [3],
         "overrides": {"protocol.epochs": 4, "protocol.augmentation": "flip"}}

KILL_AFTER_SECOND_CHECKPOINT = """
import os, signal, sys
sys.path.insert(0, {here!r})
import sweepkit
from bench.training.resume import Resumer

saved = []
original = Resumer.save

def save(self, *args, **kwargs):
    path = original(self, *args, **kwargs)
    saved.append(path)
    if len(saved) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return path

Resumer.save = save
sweepkit.run_sweep({uri!r}, {output!r}, **{sweep!r})
"""


def outputs(output: Path, result) -> dict[str, np.ndarray]:
    folder = output / result.spec.folder_name
    with np.load(folder / "codes.npz") as z:
        arrays = {k: z[k] for k in ("gallery_codes", "query_codes")}
    model = torch.load(folder / "checkpoint.pt", weights_only=True)["model"]
    return arrays | {f"model.{k}": v.numpy() for k, v in model.items()}


def loss_history(uri: str, run_id: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, "loss/total")]


def test_sigkill_after_second_checkpoint_resumes_bit_identical(tmp_path):
    uri, output = f"sqlite:///{tmp_path / 'killed.db'}", tmp_path / "killed"
    script = KILL_AFTER_SECOND_CHECKPOINT.format(here=str(sweepkit.HERE), uri=uri, output=str(output),
                                                 sweep=SWEEP)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    [checkpoint] = (output / "resume").glob(f"*/{RESUME_FILE}")
    state = torch.load(checkpoint, weights_only=True)
    assert state["loop"]["epoch"] == 2
    client = MlflowClient(uri)
    [killed] = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
                if "mlflow.parentRunId" in r.data.tags]
    assert killed.info.status == "RUNNING" and state["run_id"] == killed.info.run_id

    resumed = sweepkit.run_sweep(uri, output, **SWEEP)
    assert resumed.summary() == "ran 1 (1 finished, 0 failed), skipped 0"
    [result] = resumed.results
    assert result.run_id == killed.info.run_id  # the same MLflow run, continued
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["facehash.resumed_from_epoch"] == "2"
    assert run.data.tags["facehash.accel.step"] == "eager"  # how the steps ran (CUDA: graphs)
    assert not checkpoint.exists()  # removed once the run finished

    fresh_uri, fresh_output = f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path / "fresh"
    [reference] = sweepkit.run_sweep(fresh_uri, fresh_output, **SWEEP).results
    a, b = outputs(output, result), outputs(fresh_output, reference)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert loss_history(uri, result.run_id) == loss_history(fresh_uri, reference.run_id)
    assert [s for s, _ in loss_history(uri, result.run_id)] == [1, 2, 3, 4]
    assert result.metrics["map"] == reference.metrics["map"]


def tiny_training_objects():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [2], 0.5)
    return model, torch.nn.Module(), optimizer, scheduler, torch.Generator().manual_seed(0)


def test_checkpoint_holds_only_tensors_and_plain_values_and_round_trips(tmp_path):
    model, loss, optimizer, scheduler, generator = tiny_training_objects()
    resumer = Resumer(tmp_path, "run-a", "hash-a")
    loop = LoopState(epoch=3, step=30, best_score=0.5, best_epoch=2, history=[{"epoch": 1.0}])
    resumer.save(loop, model, loss, optimizer, scheduler, generator)
    torch.load(resumer.path, weights_only=True)  # no pickled objects inside
    expected = torch.rand(4, generator=generator)

    model2, loss2, optimizer2, scheduler2, generator2 = tiny_training_objects()
    with torch.no_grad():
        model2.weight.zero_()
    restored = resumer.restore(model2, loss2, optimizer2, scheduler2, generator2)
    assert restored == loop
    assert torch.equal(model2.weight, model.weight)
    assert torch.equal(torch.rand(4, generator=generator2), expected)
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert Resumer(tmp_path, "run-b", "hash-a").restore(model2, loss2, optimizer2, scheduler2, generator2) is None
    assert Resumer(tmp_path, "run-a", "hash-b").restore(model2, loss2, optimizer2, scheduler2, generator2) is None


class Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_a_handed_over_checkpoint_is_never_unpickled(tmp_path):
    atomic_save({"format": 1, "run_id": "r", "config_hash": "h", "evil": Payload()}, tmp_path / RESUME_FILE)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        Resumer(tmp_path, "r", "h").restore(*tiny_training_objects())
