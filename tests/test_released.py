"""The three standards and ``standard=released``: the protocol, each method's released
configuration, the released loop options of the trainer, the released DSH input, the
runs' tags, and the leaderboard keeping standards apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bench.api.methods import TrainingSpec
from bench.api.pluginhost import default_host
from bench.config.protocol import DEFAULT_EPOCHS, ProtocolConfig, fingerprint
from bench.config.settings import method_config
from bench.data.faces import FaceData, per_identity_split
from bench.running.execution import compute_run
from bench.running.planning import plan_runs
from bench.running.request import PartChoice, RunRequest
from bench.running.spec import RunSpec
from bench.training.batching import BatchSource
from bench.training.loop import TrainCallbacks, Trainer
from plugins.normalisers.caffe_mean import CaffeMeanImageNormaliser


@pytest.fixture(scope="module")
def host():
    return default_host()


def test_standards_the_old_name_and_the_budget():
    old = ProtocolConfig(standard="as-published")
    assert old.standard == "method-defaults" and old.epochs == DEFAULT_EPOCHS
    assert fingerprint(old, "s") == fingerprint(ProtocolConfig(), "s")  # stores from before the rename stay comparable
    spec = dict(method="lsh", bits=12, seed=0, method_config={})
    assert RunSpec(protocol=old, **spec).config_hash() == RunSpec(protocol=ProtocolConfig(), **spec).config_hash()
    released = ProtocolConfig(standard="released")
    assert released.epochs is None  # each method's own budget
    assert len({fingerprint(ProtocolConfig(standard=s), "s") for s in ("released", "method-defaults", "harness-standard")}) == 3


def test_released_configurations(host):
    released = ProtocolConfig(standard="released")
    dcbh = method_config("dcbh", host.methods.get("dcbh"), released)
    t = dcbh.training
    assert (t.epochs, t.sampler, t.extra_bn_pass, t.restore_best_every, t.selection_l2) == (2000, "sequential", True, 100, True)
    assert (dcbh.normalisation, dcbh.optimizer.weight_decay) == ("legacy-ddh", 0.0)
    shuffled = method_config("dcbh", host.methods.get("dcbh"), released, sets=[("dcbh.shuffle", True)])
    assert (shuffled.training.sampler, shuffled.optimizer.weight_decay) == ("shuffle", 0.0)  # independent options
    decayed = method_config("dcbh", host.methods.get("dcbh"), released, sets=[("dcbh.l2_regularizer", True)])
    assert (decayed.training.sampler, decayed.optimizer.weight_decay) == ("sequential", 2e-4)
    ddh = method_config("ddh", host.methods.get("ddh"), released).training
    assert (ddh.epochs, ddh.holdout_fraction, ddh.early_stop_patience, ddh.selection, ddh.selection_l2) == (
        200, 0.1, 50, "train_loss", True)
    dsh = method_config("dsh", host.methods.get("dsh"), released)
    assert (dsh.training.iterations, dsh.training.sampler, dsh.training.batch_size) == (70_000, "shuffle", 200)
    assert (dsh.optimizer.bias_lr_mult, dsh.normalisation, dsh.augmentation) == (2.0, "caffe-mean-image", "flip")
    smoke = method_config("dsh", host.methods.get("dsh"), ProtocolConfig(standard="released", epochs=1))
    assert (smoke.training.epochs, smoke.training.iterations) == (1, None)
    assert "deviation.config.training.iterations" in host.methods.get("dsh").tags(smoke)
    for name in ("dcbh", "ddh", "dsh"):  # harness-standard: one checkpoint rule for every method
        config = method_config(name, host.methods.get(name), ProtocolConfig(standard="harness-standard"))
        assert config.training.selection == "val_map"


class ScriptedStep:
    """A training step that returns scripted losses and counts its calls (no model maths)."""

    def __init__(self, losses: list[float]) -> None:
        self.model = nn.Linear(2, 2)
        self.loss = nn.Module()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.1)
        self.names = ["total"]
        self.status = "eager"
        self.losses, self.calls = list(losses), 0

    def __call__(self, batch, epoch, steps_before):
        self.calls += 1
        value = self.losses[min(epoch, len(self.losses)) - 1]
        self.optimizer.step()  # no gradients: changes nothing
        self.model.weight.data.add_(1.0)  # a visible change per step
        return torch.tensor([value])


def scripted_trainer(losses: list[float], n: int = 8, batch: int = 4, **spec) -> Trainer:
    source = BatchSource(np.zeros((n, 1, 2, 2), np.uint8), np.zeros(n, np.int64), batch_size=batch, sampler="sequential")
    step = ScriptedStep(losses)
    scheduler = torch.optim.lr_scheduler.LambdaLR(step.optimizer, lambda _: 1.0)
    return Trainer(step, scheduler, source, TrainingSpec(selection="train_loss", **spec), sync_every=1)


def keras1_stopped_epochs(losses: list[float], patience: int, epochs: int) -> int:
    """Keras 1 ``EarlyStopping.on_epoch_end`` (monitor='loss', mode='min'), line by line."""
    best, wait = math.inf, 0
    for epoch, current in enumerate(losses[:epochs], start=1):
        if current < best:
            best, wait = current, 0
        else:
            if wait >= patience:
                return epoch  # model.stop_training = True: this is the last epoch run
            wait += 1
    return epochs


@pytest.mark.parametrize("patience", [0, 1, 3])
def test_early_stopping_follows_keras_1(patience):
    losses = [5.0, 4.0, 4.5, 4.2, 4.1, 4.3, 4.4, 4.6, 4.8, 4.9, 5.0, 5.1]
    trainer = scripted_trainer(losses, epochs=12, early_stop_patience=patience)
    result = trainer.fit()
    ran = len(result.history)
    expected = keras1_stopped_epochs(losses, patience, 12) if patience else 12
    assert ran == expected and result.selected_epoch == 2
    assert patience == 0 or ran < 12  # the guard: stopping did happen


def test_step_budget_stops_inside_an_epoch():
    trainer = scripted_trainer([1.0], n=8, batch=4, epochs=99, iterations=5)  # 2 batches per epoch
    result = trainer.fit()
    assert (trainer.step.calls, result.steps, len(result.history)) == (5, 5, 3)


def test_the_last_epoch_of_an_iteration_budget_is_validated():
    """Under ``training.iterations`` (DSH's released budget) the run's last epoch is the budget's,
    not ``training.epochs``: it is validated like the last epoch of any run."""
    n, batch = 8, 4  # 2 batches per epoch: 5 iterations end inside epoch 3
    source = BatchSource(np.zeros((n, 1, 2, 2), np.uint8), np.zeros(n, np.int64), batch_size=batch, sampler="sequential")
    step = ScriptedStep([1.0])
    scheduler = torch.optim.lr_scheduler.LambdaLR(step.optimizer, lambda _: 1.0)
    spec = TrainingSpec(selection="val_map", validate_every=10, epochs=99, iterations=5)
    trainer = Trainer(step, scheduler, source, spec, sync_every=1)
    validated = []
    result = trainer.fit(TrainCallbacks(validate=lambda: validated.append(len(validated)) or 0.5))
    assert trainer.epochs == 3 and len(result.history) == 3
    assert validated == [0] and result.history[-1]["val_map"] == 0.5 and result.selected_epoch == 3


def test_restore_every_continues_from_the_selected_checkpoint_in_place():
    trainer = scripted_trainer([3.0, 1.0, 2.0, 2.5], epochs=4, restore_best_every=2)
    weight = trainer.model.weight
    trainer.optimizer.state[weight]["marker"] = torch.zeros(())
    result = trainer.fit()
    # epoch 2 is best (2 steps per epoch: +4 after it); restored at epoch 2 and at epoch 4
    assert result.selected_epoch == 2
    assert trainer.model.weight is weight  # the same tensor (a captured step keeps pointing at it)
    torch.testing.assert_close(weight.detach(), result.state["model"]["weight"])
    assert "optimizer" in result.state


def test_selection_l2_adds_the_coupled_decay_penalty():
    trainer = scripted_trainer([1.0], epochs=1, selection_l2=True)
    trainer.optimizer.param_groups[0]["weight_decay"] = 2e-4
    metrics = {"loss/total": 1.0}
    score = trainer._score(1, metrics, None)
    expected = 1e-4 * sum(float((p.detach() ** 2).sum()) for p in trainer.model.parameters())
    assert metrics["loss/l2"] == pytest.approx(expected) and score == pytest.approx(-(1.0 + expected))


def test_extra_bn_pass_updates_running_statistics_twice():
    from bench.training.acceleration import AccelerationSpec, resolve_acceleration
    from bench.training.batching import Batch
    from bench.training.step import TrainStep

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(1, momentum=0.1)

        def forward(self, x):
            return {"u": self.bn(x).flatten(1)}

    class Loss(nn.Module):
        names = ["mean"]

        def forward(self, outputs, context):
            value = outputs["u"].square().mean()
            return value, {"mean": value}

        def after_step(self, outputs, context):
            pass

    class Identity:
        def apply(self, x, part=0):
            return x.float()

    accel = resolve_acceleration(AccelerationSpec(precision="fp32"), torch.device("cpu"))
    images = torch.arange(16, dtype=torch.uint8).view(4, 1, 2, 2)
    batch = Batch(images, torch.zeros(4, dtype=torch.int64), torch.arange(4))
    means = []
    for extra in (False, True):
        net = Net()
        step = TrainStep(net, Loss(), torch.optim.SGD(net.parameters(), lr=0.0), Identity(), accel, 1, extra_bn_pass=extra)
        step(batch, 1, 0)
        means.append(float(net.bn.running_mean))
    batch_mean = float(images.float().mean())
    assert means[0] == pytest.approx(0.1 * batch_mean)
    assert means[1] == pytest.approx(0.1 * batch_mean + 0.9 * 0.1 * batch_mean)  # two momentum updates


def test_caffe_mean_image_is_the_training_mean_on_raw_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 3, 4, 4), dtype=np.uint8)
    split = np.array([0] * 7 + [1, 2, 2])
    normaliser = CaffeMeanImageNormaliser(images, split)
    brute = images[:7].astype(np.float64).mean(axis=0)
    out = normaliser.apply(torch.from_numpy(images[8:]), 2).numpy()
    np.testing.assert_allclose(out, images[8:] - brute, rtol=0, atol=1e-4)


def tiny_faces(n_ids: int = 4, per_id: int = 6) -> FaceData:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(n_ids), per_id)
    images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    split = per_identity_split(labels, val=0, query=1, seed=0)
    return FaceData("tiny", images, labels, split, [f"id{i}" for i in range(n_ids)])


def test_ddh_released_trains_on_the_first_90_percent_and_tags_the_run(host):
    data = tiny_faces()
    protocol = ProtocolConfig(dataset="tiny", standard="released", epochs=1)
    (run,) = plan_runs(host, RunRequest(methods=["ddh"], bits=[8], seeds=[0], protocol=protocol, device="cpu", parts=PartChoice(sets=[("training.batch_size", 3)])), data=data)
    computed = compute_run(run)
    trained = int(20 * 0.9)  # 20 training images; Keras trains on x[:18]
    assert computed.extra_metrics["train_steps"] == math.ceil(trained / 3)
    assert computed.gallery_codes.shape == (20, 8)  # the gallery is still the whole training split
    tags = run.tags
    assert run.spec.acceleration.precision == "fp32"
    assert tags["facehash.input.normalisation"] == "legacy-ddh" and tags["facehash.split.validation_images"] == "0"
    assert tags["facehash.loop.holdout_fraction"] == "0.1" and tags["facehash.loop.early_stop_patience"] == "50"
    assert tags["facehash.deviation.released.epochs"].startswith("--epochs 1")
    assert "facehash.deviation.released.overrides" in tags
    assert tags["facehash.released.metrics"].split(",")[0] == "map_legacy"


def test_leaderboard_keeps_released_and_harness_standard_apart(cli, store):
    import json

    for standard in ("released", "harness-standard"):
        code, _, err = cli("run", "--method", "lsh", "--bits", "12", "--standard", standard, "--tracking-uri", store)
        assert code == 0, err
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--format", "json")
    assert code == 0, err
    entries = err.split("protocol fingerprints found: ")[1].splitlines()[0].split("; ")
    by_standard = {entry.split("standard ")[1].split(",")[0]: entry.split(" (")[0] for entry in entries}
    assert sorted(by_standard) == ["harness-standard", "released"]  # two fingerprints, never pooled
    for standard, fp in by_standard.items():
        code, out, err = cli("leaderboard", "--tracking-uri", store, "--protocol", fp, "--format", "json")
        assert code == 0, err
        report = json.loads(out)
        assert report["meta"]["standard"] == standard and report["meta"]["protocol_fingerprint"] == fp
        assert [cell["n_seeds"] for cell in report["cells"]] == [1]  # only this standard's run
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--protocol", by_standard["released"])
    assert code == 0, err
    assert "RELEASED" in out


DOCS = {"dcbh": "docs/dcbh.md", "ddh": "docs/baselines.md", "dsh": "docs/baselines.md"}


def documented_deviations(page: str, method: str) -> set[str]:
    """The names in the bullet list after ``<!-- deviations: METHOD -->`` on a docs page."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / page).read_text()
    lines = text.split(f"<!-- deviations: {method} -->\n", 1)[1].splitlines()
    names = []
    for line in lines:
        if not line.strip():
            break
        if line.startswith("- `"):
            names.append(line[3:].split("`", 1)[0])
    return set(names)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_fixed_deviation_tag_is_in_the_docs_page(host, name):
    method = host.methods.get(name)
    tags: set[str] = set()
    for standard in ("method-defaults", "released", "harness-standard"):
        config = method_config(name, method, ProtocolConfig(standard=standard))
        tags |= {k.removeprefix("deviation.") for k in method.tags(config)
                 if k.startswith("deviation.") and not k.startswith("deviation.config.")}
    documented = documented_deviations(DOCS[name], name)
    assert tags == documented, f"tags only: {tags - documented}; docs only: {documented - tags}"


def test_dsh_finetunes_from_the_12_bit_checkpoint(host, tmp_path):
    from bench.api.errors import BenchError
    from bench.training.checkpoint import atomic_save

    data = tiny_faces()
    protocol = ProtocolConfig(dataset="tiny", standard="released", epochs=1)
    (twelve,) = plan_runs(host, RunRequest(methods=["dsh"], bits=[12], seeds=[0], protocol=protocol, device="cpu"), data=data)
    state = compute_run(twelve).state
    atomic_save(state, tmp_path / "checkpoint.pt")
    sets = [("dsh.finetune", True), ("training.init_from", str(tmp_path / "checkpoint.pt"))]
    (run,) = plan_runs(host, RunRequest(methods=["dsh"], bits=[24], seeds=[0], protocol=ProtocolConfig(dataset="tiny", standard="released"), device="cpu", parts=PartChoice(sets=sets)), data=data)
    config = run.config
    assert (config.optimizer.lr, config.head.lr_mult, config.training.iterations, config.schedule.gamma) == (1e-4, 10.0, 30_000, 0.6)
    assert config.schedule.milestones == pytest.approx([k / 30 for k in range(4, 30, 4)])
    assert not any(k.startswith("facehash.deviation.config.") for k in run.tags)  # finetune_solver is the reference
    assert "facehash.deviation.code_lengths" not in run.tags
    from bench.api.interfaces import BuildContext
    from bench.training.assembly import build_parts
    from bench.training.checkpoint import load_matching

    model, _ = build_parts(host, config, BuildContext(24, 4, (3, 32, 32), 0, train_size=20))
    kept = load_matching(model, tmp_path / "checkpoint.pt")
    assert kept and all(name.startswith("head.") for name in kept)  # only the new hash layer
    for name, value in model.state_dict().items():
        if name not in kept:
            torch.testing.assert_close(value, state["model"][name])
    with pytest.raises(BenchError, match="init_from"):
        method_config("dsh", host.methods.get("dsh"), ProtocolConfig(), sets=[("dsh.finetune", True)])
