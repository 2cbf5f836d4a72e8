"""The ``dcbh`` method: reference defaults, variants, deviations in the tags, the assembled
model's size, gradients, a tiny overfit and seeded determinism (CPU, tiny inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, StepContext
from bench.api.pluginhost import load_plugins
from bench.cli.parsing import parse_sets
from bench.config.protocol import ProtocolConfig
from bench.config.settings import method_config
from bench.data.loading import load_data
from bench.running.execution import compute_run
from bench.running.planning import plan_runs
from bench.running.request import PartChoice, RunRequest
from bench.training.acceleration import AccelerationSpec
from bench.training.assembly import build_optimizer, build_parts
from dcbh.method import DCBH, DCBHConfig


@pytest.fixture(scope="module")
def host():
    return load_plugins()


def resolve(host, *sets, protocol=None):
    method = host.methods.get("dcbh")
    return method_config(
        "dcbh", method, protocol or ProtocolConfig(), sets=parse_sets(list(sets)),
        known_methods=frozenset(host.methods.names()),
    )


def parts(host, config, bits=48, classes=530, size=32, seed=0):
    torch.manual_seed(seed)
    return build_parts(host, config, BuildContext(bits, classes, (3, size, size), seed))


def test_dcbh_defaults_are_the_released_code(host):
    method = host.methods.get("dcbh")
    assert isinstance(method, DCBH)
    config = resolve(host)
    assert config.variant == "released"
    assert (config.backbone.name, config.head.name) == ("vgg16-trunc", "block")
    assert config.head.options == {"c": 6, "block_linear": False}
    assert [(t.name, t.weight) for t in config.losses] == [
        ("ce_code", 1.0), ("ce_descriptor", 1.0), ("quantization", 0.1), ("center", 1e-4)
    ]
    assert config.losses[2].options == {"alpha": 0.5}
    assert config.losses[3].options == {"reduction": "sum", "update": True}
    opt = config.optimizer
    assert (opt.name, opt.lr, opt.weight_decay, opt.betas, opt.eps) == ("adam", 1e-3, 0.0, (0.9, 0.999), 1e-8)
    t = config.training
    assert (t.batch_size, t.sampler, t.selection) == (256, "sequential", "train_loss")
    assert t.epochs == ProtocolConfig().epochs  # the protocol's budget, not the published 2000
    assert config.schedule.name == "constant"


def test_intended_variant_and_user_settings(host):
    config = resolve(host, "dcbh.variant=intended")
    assert config.optimizer.weight_decay == 2e-4 and config.optimizer.decay_scope == "kernels"
    assert config.training.sampler == "shuffle" and config.training.selection == "train_loss"
    kept = resolve(host, "dcbh.variant=intended", "optimizer.weight_decay=1e-5", "training.sampler=balanced")
    assert kept.optimizer.weight_decay == 1e-5 and kept.training.sampler == "balanced"
    method = host.methods.get("dcbh")
    assert method.resolve(config) == config  # idempotent
    with pytest.raises(BenchError, match="variant"):
        resolve(host, "dcbh.variant=published")


def test_tags_record_every_deviation(host):
    method = host.methods.get("dcbh")
    tags = method.tags(resolve(host, protocol=ProtocolConfig(epochs=7)))
    assert tags["dcbh.variant"] == "released" and tags["dcbh.published_epochs"] == "2000"
    assert tags["deviation.config.training.epochs"] == "7 (reference: 2000)"
    for fixed in ("bn_zero_debias", "adam_epsilon", "feature_concat_order", "center_update_order"):
        assert f"deviation.{fixed}" in tags
    assert "deviation.bn_running_var" not in tags  # TF's fused batch norm Bessel-corrects too
    # under method-defaults the released input and loop are off: each is a deviation
    loop = {"deviation.config.training.epochs", "deviation.config.normalisation", "deviation.config.training.extra_bn_pass",
            "deviation.config.training.restore_best_every", "deviation.config.training.selection_l2"}
    config_deviations = {k for k in tags if k.startswith("deviation.config.")}
    assert config_deviations == loop
    intended = method.tags(resolve(host, "dcbh.variant=intended"))
    assert {k for k in intended if k.startswith("deviation.config.")} == loop
    assert intended["dcbh.l2_regularizer"] == intended["dcbh.shuffle"] == "True"
    released = method.tags(resolve(host, protocol=ProtocolConfig(standard="released")))
    assert not {k for k in released if k.startswith("deviation.config.")}
    changed = method.tags(resolve(host, "head.block_linear=true", "loss.center.weight=0.01",
                                  "optimizer.weight_decay=1e-5"))
    assert changed["deviation.config.head.options.block_linear"] == "True (reference: False)"
    assert changed["deviation.config.losses.center.weight"] == "0.01 (reference: 0.0001)"
    assert changed["deviation.config.optimizer.weight_decay"] == "1e-05 (reference: 0.0)"
    swapped = method.tags(resolve(host, protocol=ProtocolConfig(standard="harness-standard")))
    assert swapped["deviation.config.training.batch_size"] == "128 (reference: 256)"


def test_whole_model_has_the_reference_parameter_count(host):
    model, loss = parts(host, resolve(host))
    n = sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in loss.parameters())
    conv = 7_632_576
    bn = 2 * (64 * 2 + 128 * 2 + 256 * 3 + 512 * 3) + 2 * 288
    linear0 = 768 * 288 + 288
    heads = (48 * 530 + 530) + (288 * 530 + 530)
    centers = 530 * 288  # trainable in the released code, so in its parameter count
    assert n == conv + bn + linear0 + heads + centers == 8_191_780  # "about 8.19M"
    block_linear, _ = parts(host, resolve(host, "head.block_linear=true"))
    assert sum(p.numel() for p in block_linear.parameters()) - sum(p.numel() for p in model.parameters()) == 336


def test_intended_decays_kernels_only(host):
    model, loss = parts(host, resolve(host, "dcbh.variant=intended"), bits=12, classes=5)
    optimizer = build_optimizer(resolve(host, "dcbh.variant=intended").optimizer, model, loss)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 2e-4 for p in g["params"]}
    kernels = [m.weight for m in [*model.modules(), *loss.modules()]
               if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert decayed == {id(k) for k in kernels} and len(kernels) == 10 + 1 + 2
    assert id(loss.parts["center"].centers) not in decayed


def test_gradients_reach_every_parameter_and_the_centers(host):
    model, loss = parts(host, resolve(host), bits=12, classes=4, size=16)
    images, labels = torch.randn(8, 3, 16, 16), torch.tensor([0, 1, 2, 3] * 2)
    total, _ = loss(model(images), StepContext.of(labels))
    total.backward()
    named = [*model.named_parameters(), *loss.named_parameters()]
    missing = [n for n, p in named if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    assert torch.any(loss.parts["center"].centers.grad != 0)


def test_loss_halves_within_50_steps_on_a_fixed_batch(host):
    config = resolve(host)
    model, loss = parts(host, config, bits=12, classes=4, size=16)
    optimizer = build_optimizer(config.optimizer, model, loss)
    torch.manual_seed(0)
    images, labels = torch.randn(16, 3, 16, 16), torch.arange(4).repeat(4)
    values = []
    for _ in range(50):
        outputs = model(images)
        total, _ = loss(outputs, StepContext.of(labels))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        loss.after_step({k: v.detach() for k, v in outputs.items()}, StepContext.of(labels))
        values.append(float(total.detach()))
    assert min(values[1:]) <= 0.5 * values[0], values[::10]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_seed_gives_identical_codes_through_the_harness(host, precision):
    protocol = ProtocolConfig(epochs=2, batch_size=32, input_size=16)  # 18 steps
    data = load_data(host, protocol, None)

    def codes(seed):
        [run] = plan_runs(host, RunRequest(methods=["dcbh"], bits=[12], seeds=[seed], protocol=protocol, device="cpu", acceleration=AccelerationSpec(precision=precision), parts=PartChoice(sets=[("dcbh.variant", "intended")])), data=data)
        return compute_run(run).gallery_codes

    first, again, other = codes(0), codes(0), codes(1)
    assert len(np.unique(first, axis=0)) > 5  # not a collapsed (trivially equal) code
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_any_bit_length_builds(host):
    config = DCBHConfig()
    for bits in (1, 7, 12):
        model, _ = parts(host, config, bits=bits, classes=3, size=16)
        assert model(torch.randn(2, 3, 16, 16))["u"].shape == (2, bits)
