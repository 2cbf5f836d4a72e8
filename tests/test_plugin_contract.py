"""The plugin contract (bench.api.contract) and what it gives the next methods: the step
context, parts that own buffers, the straight-through sign, per-part learning rates; the
example plugin (examples/hashing_plugin.py) and a probe plugin installed as a distribution."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from test_batching import faces
from test_training_step import HostReadLog, plain_accel, whole
from torch import nn

from bench import hookimpl
from bench.api import hookspecs
from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext, HashHead, StepContext
from bench.api.kinds import KINDS, readme_table
from bench.api.methods import PartSpec, ScheduleSpec, TrainingSpec
from bench.api.pluginhost import load_plugins
from bench.cli.parsing import parse_loss
from bench.config.protocol import ProtocolConfig
from bench.config.settings import method_config
from bench.data.faces import TRAIN
from bench.data.loading import load_data
from bench.data.preprocess import ChannelMeanStd
from bench.running.execution import compute_run
from bench.running.planning import plan_runs
from bench.running.request import PartChoice, RunRequest
from bench.training.assembly import build_optimizer, build_parts, build_scheduler, rated_parts
from bench.training.batching import BatchSource
from bench.training.loop import LoopState, TrainCallbacks, Trainer
from bench.training.resume import Resumer
from bench.training.step import TrainStep
from plugins.heads.straight_through import straight_through_sign

from conftest import ROOT, install_plugin

EXAMPLE = ROOT / "examples" / "hashing_plugin.py"
PROBE = ROOT / "tests" / "step_probe_plugin.py"
MEMORY = "parts.memory-pairwise."


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Dimless(Backbone):
    def __init__(self, ctx):
        super().__init__()

    def forward(self, images):
        return {}


class NarrowHead(HashHead):
    def __init__(self, ctx, feature_dims):
        super().__init__()
        self.output_dims = {"u": ctx.bits - 1}


class ModuleLoss(nn.Module):
    def __init__(self, ctx, output_dims):
        super().__init__()


class OffContract:
    """Factories that break the contract, each in its own way."""

    @hookimpl
    def register_backbones(self, register):
        register("dimless", Dimless)

    @hookimpl
    def register_heads(self, register):
        register("one-arg-head", lambda ctx: None)
        register("narrow", NarrowHead)

    @hookimpl
    def register_losses(self, register):
        register("module-loss", ModuleLoss)


@pytest.fixture(scope="module")
def host():
    return load_plugins(extra_plugins={"hashing": load_module(EXAMPLE, "hashing_plugin_t"),
                                       "off-contract": OffContract()})


def config_of(host, method, **overrides):
    sets = overrides.pop("sets", [])
    return method_config(method, host.methods.get(method), ProtocolConfig(epochs=2), sets=sets, **overrides)


def built(host, method, train_size=40, **overrides):
    config = config_of(host, method, **overrides)
    torch.manual_seed(0)
    model, loss = build_parts(host, config, BuildContext(12, 4, (3, 32, 32), 0, train_size=train_size))
    return config, model, loss


# ---- the contract ----------------------------------------------------------------------


def test_planning_checks_each_factory_against_its_kinds_call(host):
    with pytest.raises(BenchError, match=r"^head 'one-arg-head' cannot be called as factory\(ctx, "
                                         r"feature_dims, \*\*options\): too many positional arguments$"):
        plan_runs(host, RunRequest(methods=["memory-hash"], bits=[12], seeds=[0], protocol=ProtocolConfig(), parts=PartChoice(head="one-arg-head")))
    with pytest.raises(BenchError, match="unknown option 'width' for head 'sign-fc'; known options: none"):
        plan_runs(host, RunRequest(methods=["memory-hash"], bits=[12], seeds=[0], protocol=ProtocolConfig(), parts=PartChoice(sets=[("head.width", 3)])))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"backbone": "dimless"}, "backbone 'dimless' sets no feature_dims; set self.feature_dims = "
                              "{name: width} in __init__"),
    ({"head": "narrow"}, "head 'narrow' gives output_dims {'u': 11}; set self.output_dims in __init__, "
                         "with 'u' of width 12 (the run's bits)"),
    ({"loss": parse_loss("module-loss")}, "loss 'module-loss' built a ModuleLoss, not a bench.api.interfaces.LossPart; "
                              "subclass it"),
])
def test_built_parts_are_held_to_their_base_class(host, overrides, message):
    with pytest.raises(BenchError) as caught:
        built(host, "memory-hash", **overrides)
    assert str(caught.value) == message


def readme_plugin_section() -> str:
    return (ROOT / "README.md").read_text().split("## Writing a plugin")[1].split("\n## ")[0]


def test_the_one_table_of_kinds_is_what_readme_the_hooks_the_host_and_bench_plugins_show(host, cli):
    """README's table, the hook specs, the host's registries and ``bench plugins`` all derive
    from bench.api.kinds.KINDS: any of them drifting from it fails here."""
    section = readme_plugin_section()
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert "\n".join(table) == readme_table()
    assert [row.split(" | ")[0].removeprefix("| ") for row in table[2:]] == [k.label for k in KINDS.values()]
    specs = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert specs == {kind.hook for kind in KINDS.values()}
    assert set(host.manager.hook.__dict__) >= specs
    assert list(host.registries) == list(KINDS) and [r.kind for r in host.registries.values()] == [
        k.label for k in KINDS.values()]
    code, out, err = cli("plugins")
    assert code == 0, err
    shown = {line.split("│")[1].strip() for line in out.splitlines() if line.count("│") > 2}
    assert shown - {""} == {k.label for k in KINDS.values()}  # every kind has a built-in entry


def test_readme_shows_every_kinds_call_and_the_step_context():
    section = readme_plugin_section()
    for kind in KINDS.values():
        assert kind.call in section, kind.label
    for field in ("labels", "indices", "epoch", "step", "total_steps"):
        assert f"`context.{field}`" in section
    for name in ("class MyHead(HashHead)", "class MyLoss(LossPart)", "def forward(self, outputs, context)",
                 "def my_faces(data_root", "examples/hashing_plugin.py"):
        assert name in section


# ---- the straight-through sign ----------------------------------------------------------


def test_straight_through_sign_is_the_code_forward_and_the_identity_backward():
    h = torch.tensor([[-2.0, -1e-6, 0.0, 3.0]], requires_grad=True)
    codes = straight_through_sign(h)
    assert codes.tolist() == [[-1.0, -1.0, 1.0, 1.0]] and codes.dtype == h.dtype
    weights = torch.tensor([[0.5, -1.0, 2.0, 4.0]])
    (grad,) = torch.autograd.grad((codes * weights).sum(), h)
    assert torch.equal(grad, weights)  # d sign(h) / dh taken as 1: the weights pass through
    assert straight_through_sign(torch.tensor([0.0, -3.0], dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_a_head_with_the_straight_through_sign_trains_its_layer(host):
    _, model, _ = built(host, "memory-hash")
    out = model(torch.randn(4, 3, 32, 32))
    assert set(out["u"].unique().tolist()) <= {-1.0, 1.0} and torch.equal(out["u"], torch.where(out["h"] >= 0, 1.0, -1.0))
    out["u"].sum().backward()
    assert torch.equal(model.head.linear.bias.grad, torch.full((12,), 4.0))  # four samples, gradient 1 each


# ---- parameter groups -------------------------------------------------------------------


def legacy_groups(spec, model, loss):
    """The groups before multipliers existed: [kernels, the rest] under decay_scope=kernels
    with a weight decay, else one group; every group at the base rate."""
    params = [p for m in (model, loss) for p in m.parameters() if p.requires_grad]
    if not (spec.weight_decay and spec.decay_scope == "kernels"):
        return [([id(p) for p in params], spec.lr, spec.weight_decay)]
    kernels = set()
    for m in [*model.modules(), *loss.modules()]:
        if isinstance(m, nn.Conv2d | nn.Linear):
            kernels.add(id(m.weight))
        if hasattr(m, "kernel_parameters"):
            kernels.update(id(p) for p in m.kernel_parameters())
    return [([id(p) for p in params if id(p) in kernels], spec.lr, spec.weight_decay),
            ([id(p) for p in params if id(p) not in kernels], spec.lr, 0.0)]


@pytest.mark.parametrize(("method", "sets"), [("dcbh", []), ("dcbh", [("dcbh.variant", "intended")]),
                                              ("ddh", []), ("dsh", [])])
def test_built_in_methods_keep_their_parameter_groups(host, method, sets):
    config, model, loss = built(host, method, sets=sets)
    optimizer = build_optimizer(config.optimizer, *rated_parts(config, model, loss), fused=True)
    groups = [([id(p) for p in g["params"]], g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
    assert groups == legacy_groups(config.optimizer, model, loss)
    assert len(groups) == (1 if method == "dcbh" and not sets else 2)


def test_part_multipliers_make_their_own_groups_and_follow_the_schedule(host):
    config, model, loss = built(host, "memory-hash", sets=[("optimizer.weight_decay", 0.01),
                                                          ("head.decay_mult", 0.5)])
    optimizer = build_optimizer(config.optimizer, *rated_parts(config, model, loss), fused=True)
    ids = {name: {id(p) for p in part.parameters()} for name, part in (("backbone", model.backbone),
                                                                       ("head", model.head))}
    kernels = {id(model.head.linear.weight)} | {id(m.weight) for m in model.backbone.modules()
                                                if isinstance(m, nn.Conv2d | nn.Linear)}
    groups = [({id(p) for p in g["params"]}, g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
    assert groups == [
        (ids["backbone"] & kernels, pytest.approx(1e-4), 0.01),  # OrthoHash: the backbone at lr x0.1
        (ids["head"] & kernels, 1e-3, 0.005),
        (ids["backbone"] - kernels, pytest.approx(1e-4), 0.0),
        (ids["head"] - kernels, 1e-3, 0.0),
    ]
    scheduler = build_scheduler(ScheduleSpec(name="step", milestones=[0.5], gamma=0.1), optimizer, 4)
    for _ in range(2):
        optimizer.step()  # fused Adam over four groups (no gradients yet: nothing moves)
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-5, 1e-4, 1e-5, 1e-4])


def test_dsh_biases_can_train_at_twice_the_rate_as_in_caffe(host):
    config, model, loss = built(host, "dsh", sets=[("optimizer.bias_lr_mult", 2)])
    optimizer = build_optimizer(config.optimizer, *rated_parts(config, model, loss))
    biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    [kernels, rest] = optimizer.param_groups
    assert (kernels["lr"], kernels["weight_decay"], rest["lr"], rest["weight_decay"]) == (1e-3, 0.004, 2e-3, 0.0)
    assert {id(p) for p in rest["params"]} == biases


def test_multipliers_are_settings_and_unused_ones_leave_the_config_as_it_was(host):
    config = config_of(host, "dsh", sets=[("backbone.lr_mult", 0.1), ("loss.dsh-pairwise.decay_mult", 0.0)])
    assert config.backbone.lr_mult == 0.1 and config.backbone.options == {}
    assert config.losses[0].decay_mult == 0.0 and config.losses[0].options == {"alpha": 0.01}
    plain = config_of(host, "dsh").model_dump(mode="json")
    assert "lr_mult" not in plain["backbone"] and "bias_lr_mult" not in plain["optimizer"]
    [default] = plan_runs(host, RunRequest(methods=["dsh"], bits=[12], seeds=[0], protocol=ProtocolConfig(epochs=1)))
    [scaled] = plan_runs(host, RunRequest(methods=["dsh"], bits=[12], seeds=[0], protocol=ProtocolConfig(epochs=1), parts=PartChoice(sets=[("backbone.lr_mult", 0.1)])))
    assert default.spec.config_hash() == "d9f406b3" + default.spec.config_hash()[8:]  # pinned: unused multipliers leave it (re-pinned when precision_at became None)
    assert scaled.spec.config_hash() != default.spec.config_hash()
    assert PartSpec.model_validate(scaled.spec.method_config["backbone"]).lr_mult == 0.1


# ---- buffers, the step context, the example plugin ---------------------------------------


def test_loss_buffers_are_checkpointed_and_resumed_but_never_optimised(host, tmp_path):
    config, model, loss = built(host, "memory-hash", train_size=37)
    optimizer = build_optimizer(config.optimizer, *rated_parts(config, model, loss), fused=True)
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    buffers = dict(loss.named_buffers())
    assert set(buffers) == {MEMORY + "memory_codes", MEMORY + "memory_labels"}
    assert not optimised & {id(b) for b in buffers.values()}
    x, y = faces([10, 9, 11, 7], size=32, seed=3)
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    source = BatchSource(x, y, batch_size=8, sampler="shuffle", seed=1)
    scheduler = build_scheduler(config.schedule, optimizer, 10)
    step = TrainStep(model, loss, optimizer, normaliser, plain_accel(), 10)
    resumer = Resumer(tmp_path, "run", "hash")
    saved = []

    def on_epoch_end(loop: LoopState) -> None:
        resumer.save(loop, model, loss, optimizer, scheduler, source.generator)
        saved.append({k: v.clone() for k, v in loss.state_dict().items()})

    result = Trainer(step, scheduler, source, TrainingSpec(epochs=2, selection="last"), 1).fit(
        TrainCallbacks(on_epoch_end=on_epoch_end))
    labels = result.state["loss"][MEMORY + "memory_labels"]
    assert torch.equal(labels, torch.from_numpy(y))  # the selected checkpoint holds the memory
    assert set(result.state["loss"][MEMORY + "memory_codes"].unique().tolist()) == {-1.0, 1.0}
    _, fresh_model, fresh_loss = built(host, "memory-hash", train_size=37)
    fresh_optimizer = build_optimizer(config.optimizer, *rated_parts(config, fresh_model, fresh_loss))
    fresh_scheduler = build_scheduler(config.schedule, fresh_optimizer, 10)
    start = resumer.restore(fresh_model, fresh_loss, fresh_optimizer, fresh_scheduler, torch.Generator())
    assert start.epoch == 2
    for name, value in saved[-1].items():
        assert torch.equal(fresh_loss.state_dict()[name], value), name


def test_the_example_plugins_step_never_reads_back_to_the_host(host):
    config, model, loss = built(host, "memory-hash", train_size=16)
    optimizer = build_optimizer(config.optimizer, *rated_parts(config, model, loss), fused=True)
    x, y = faces([4] * 4, size=32, seed=2)
    step = TrainStep(model, loss, optimizer, ChannelMeanStd(x, np.zeros(len(y), np.int8)),
                     plain_accel(), 2)
    step(whole(x, y), 1, 0)
    with HostReadLog() as log:
        step(whole(x, y), 1, 1)
    assert log.found == []


def test_the_example_plugin_trains_and_its_memory_holds_every_training_sample(host):
    data = load_data(host, ProtocolConfig(), None)
    [run] = plan_runs(host, RunRequest(methods=["memory-hash"], bits=[16], seeds=[0], protocol=ProtocolConfig(epochs=2)), data=data)
    computed = compute_run(run)
    memory = computed.state["loss"]
    assert np.array_equal(memory[MEMORY + "memory_labels"].numpy(), data.part(TRAIN)[1])
    assert set(memory[MEMORY + "memory_codes"].unique().tolist()) == {-1.0, 1.0}
    assert computed.extra_metrics["train_steps"] == 2 * -(-len(data.part(TRAIN)[1]) // 64)
    assert 0 < computed.evaluation.metrics["map"] <= 1


def test_a_context_outside_training_is_the_first_step_over_the_first_samples():
    context = StepContext.of(torch.tensor([4, 2, 4]))
    assert context.indices.tolist() == [0, 1, 2] and context.labels.tolist() == [4, 2, 4]
    assert (int(context.epoch), int(context.step), context.total_steps) == (1, 0, 1)


# ---- the probe plugin, installed, through the CLI ---------------------------------------


def test_an_installed_plugins_loss_sees_every_training_index_in_both_epochs(plugin_site, cli, store):
    install_plugin(plugin_site, "step-probe", "step_probe", PROBE.read_text())
    code, out, err = cli("run", "--method", "probe-hash", "--bits", "8", "--epochs", "2",
                         "--dataset", "synthfaces", "--set", "dataset.identities=8",
                         "--set", "dataset.images_per_identity=12", "--tracking-uri", store)
    assert code == 0 and "FINISHED" in out, err
    [folder] = Path.cwd().glob("bench-output/probe-hash-8b-s0-*")
    state = torch.load(folder / "checkpoint.pt", weights_only=True)["loss"]
    with np.load(folder / "codes.npz") as z:
        train_labels = z["gallery_labels"]
    visits = state["parts.visit-counter.visits"]
    assert visits.shape == (5, len(train_labels)) == (5, 40)
    assert visits[1].eq(1).all() and visits[2].eq(1).all()  # each sample once in epoch 1 and once in 2
    assert visits[0].eq(0).all() and visits[3:].eq(0).all()
    assert np.array_equal(state["parts.visit-counter.labels_seen"].numpy(), train_labels)
