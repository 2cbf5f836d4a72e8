"""Resume: a run killed with SIGKILL after its second epoch checkpoint continues in the same
MLflow run and ends bit-identical to an uninterrupted run; checkpoints load with
``weights_only=True`` and only for the run that wrote them."""

from __future__ import annotations

import os
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


def test_a_handed_over_checkpoint_is_never_unpickled(tmp_path, capsys):
    atomic_save({"format": 1, "run_id": "r", "config_hash": "h", "evil": Payload()}, tmp_path / RESUME_FILE)
    objects = tiny_training_objects()
    before = objects[0].weight.clone()
    assert Resumer(tmp_path, "r", "h").restore(*objects) is None
    err = capsys.readouterr().err
    assert "should-never-run" not in err and "holds pickled objects" in err
    assert torch.equal(objects[0].weight, before)


def crafted(path: Path) -> None:
    atomic_save({"format": 1, "run_id": "r", "config_hash": "h", "evil": Payload()}, path)


def truncated(path: Path) -> None:
    tiny = tiny_training_objects()
    Resumer(path.parent, "r", "h").save(LoopState(1, 1, 0.0, 1, None, []), *tiny)
    path.write_bytes(path.read_bytes()[:200])


def foreign(path: Path) -> None:
    Resumer(path.parent, "another-run", "h").save(LoopState(1, 1, 0.0, 1, None, []), *tiny_training_objects())


def misfit(path: Path) -> None:  # this run's identity, another model's shapes
    model = torch.nn.Linear(5, 2)
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [2])
    Resumer(path.parent, "r", "h").save(LoopState(1, 1, 0.0, 1, None, []), model, torch.nn.Module(), optimizer,
                                        scheduler, torch.Generator())


@pytest.mark.parametrize("make", [crafted, truncated, foreign, misfit, lambda p: p.write_text("not torch")])
def test_a_bad_checkpoint_is_moved_aside_with_one_warning_and_the_run_starts_fresh(tmp_path, capsys, make):
    path = tmp_path / RESUME_FILE
    make(path)
    content = path.read_bytes()
    objects = tiny_training_objects()
    fresh = {"weight": objects[0].weight.clone(), "optimizer": repr(objects[2].state_dict())}
    assert Resumer(tmp_path, "r", "h").restore(*objects) is None
    [aside] = tmp_path.glob(f"{RESUME_FILE}.bad-*")
    assert aside.read_bytes() == content and not path.exists()  # kept, out of the way
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: resume checkpoint") and aside.name in lines[0], lines
    assert "weights_only" not in lines[0] and "should-never-run" not in lines[0]
    assert torch.equal(objects[0].weight, fresh["weight"]) and repr(objects[2].state_dict()) == fresh["optimizer"]


def test_a_run_with_a_damaged_checkpoint_finishes_with_and_without_force(tmp_path, capsys):
    from bench.running.sweep import SweepFile, expand

    sweep = {"methods": ["sweep-tiny"], "bits": [8], "seeds": [0], "overrides": {"protocol.epochs": 1}}
    [run] = expand(sweepkit.host(), SweepFile(**{"datasets": ["orl"], **sweep}))
    path = tmp_path / "out" / "resume" / run.spec.folder_name / RESUME_FILE
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    for force in (False, True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK\x03\x04 truncated")
        outcome = sweepkit.run_sweep(uri, tmp_path / "out", force=force, **sweep)
        assert outcome.summary() == "ran 1 (1 finished, 0 failed), skipped 0", outcome.results[0].reason
        assert "not used (it is damaged or not a checkpoint)" in capsys.readouterr().err
    assert len(list(path.parent.glob(f"{RESUME_FILE}.bad-*"))) == 2
