"""Resolving a method's config: protocol budget, harness-standard, part overrides, --set."""

import pytest

from bench.api.errors import BenchError
from bench.api.methods import DeepMethod, DeepMethodConfig, LossTerm, OptimizerSpec, PartSpec
from bench.cli.parsing import parse_loss, parse_sets
from bench.config.settings import build_protocol, method_config, split_sets


class Cfg(DeepMethodConfig):
    backbone: PartSpec = PartSpec(name="bb", options={"width": 8})
    head: PartSpec = PartSpec(name="fc")
    losses: list[LossTerm] = [LossTerm(name="ce_code"), LossTerm(name="quantization", weight=0.1)]
    optimizer: OptimizerSpec = OptimizerSpec(name="sgd", lr=0.01)
    variant: str = "released"


class M(DeepMethod):
    Config = Cfg


def resolve(protocol=None, **kw):
    return method_config("m", M(), protocol or build_protocol({}, {}, {}), known_methods=frozenset({"m", "other"}), **kw)


def test_protocol_budget_and_standard_apply():
    assert resolve().training.epochs == 50
    protocol = build_protocol({"epochs": 7, "standard": "harness-standard"}, {}, {})
    config = resolve(protocol)
    assert config.training.epochs == 7
    assert (config.optimizer.name, config.optimizer.lr, config.training.batch_size) == ("adam", 1e-3, 128)
    assert resolve(build_protocol({"batch_size": 32}, {}, {})).training.batch_size == 32


def test_set_routes_parts_losses_method_prefix_and_paths():
    sets = parse_sets(["backbone.width=16", "head.name=block", "loss.quantization.weight=0.5",
                       "loss.quantization.alpha=0.5", "m.variant=intended", "other.variant=x",
                       "optimizer.lr=1e-4"])
    config = resolve(sets=sets)
    assert config.backbone.options == {"width": 16}
    assert config.head.name == "block"
    q = [t for t in config.losses if t.name == "quantization"][0]
    assert (q.weight, q.options) == (0.5, {"alpha": 0.5})
    assert config.variant == "intended" and config.optimizer.lr == 1e-4


def test_loss_syntax_add_remove_replace():
    assert [t.name for t in resolve(loss=parse_loss("+center:0.001,-quantization")).losses] == ["ce_code", "center"]
    assert [t.weight for t in resolve(loss=parse_loss("+center:0.001")).losses] == [1.0, 0.1, 0.001]
    assert [t.name for t in resolve(loss=parse_loss("a,b")).losses] == ["a", "b"]
    with pytest.raises(BenchError, match="mix of replace"):
        parse_loss("a,+b")
    with pytest.raises(BenchError, match="weight 'x' is not a number"):
        parse_loss("+center:x")
    with pytest.raises(BenchError, match="has no loss part 'nope'"):
        resolve(loss=parse_loss("-nope"))


def test_unknown_and_invalid_settings_are_one_line_errors():
    with pytest.raises(BenchError, match="unknown key 'optimizer.learning_rate'.*known keys: .*lr"):
        resolve(sets=parse_sets(["optimizer.learning_rate=1"]))
    with pytest.raises(BenchError, match="invalid value for 'optimizer.name'"):
        resolve(sets=parse_sets(["optimizer.name=lbfgs"]))
    with pytest.raises(BenchError, match="use --epochs"):
        resolve(sets=parse_sets(["training.epochs=3"]))
    with pytest.raises(BenchError, match="expected key=value"):
        parse_sets(["novalue"])


def test_dataset_and_protocol_settings_are_split_off():
    dataset, protocol, method = split_sets(parse_sets(["dataset.identities=200", "protocol.input_size=48", "x=1"]))
    p = build_protocol({"dataset": "synthfaces"}, protocol, dataset)
    assert p.dataset_options == {"identities": 200} and p.input_size == 48 and method == [("x", 1)]
