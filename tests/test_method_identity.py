"""A method's identity is declared once, on the class (bench.api.methods.Method): its name,
its reference and published budget; the built-in methods neither spell their name again in
their tags nor at registration, and every tag derives from the declaration."""

import inspect
import re

import pytest

from bench.api.deviations import deviation_tags
from bench.api.methods import DeepMethod, Method, OptimizerSpec, Reference
from bench.api.pluginhost import load_plugins

from conftest import ROOT

BUILTIN_PLUGINS = ("dcbh", "baselines")


@pytest.fixture(scope="module")
def builtin_methods():
    host = load_plugins()
    entries = [e for e in host.methods if e.plugin in BUILTIN_PLUGINS]
    assert len(entries) >= 10, [e.name for e in host.methods]
    return entries


def spelled_names(source: str, name: str) -> list[str]:
    """The string literals of ``source`` that are ``name`` or begin with ``<name>.`` (a tag key
    or a tag prefix spelled by hand)."""
    return re.findall(rf"""[rbuf]*["']{re.escape(name)}(?:\.[\w{{}}]*|["'])""", source)


def tag_sources(cls: type) -> str:
    """The source of what makes a method's tags, where its own class (or a class of its module)
    defines it."""
    module = inspect.getmodule(cls)
    classes = [c for c in cls.__mro__ if inspect.getmodule(c) is module]
    return "\n".join(inspect.getsource(vars(c)[attr]) for c in classes for attr in ("tags", "own_tags")
                     if attr in vars(c))


def test_the_spelling_check_can_fail():
    source = 'tags = {"ddh.reference": x, f"ddh.{option}": y}\nreference_tags("ddh", z)\nlog("ddh-like text")'
    assert spelled_names(source, "ddh") == ['"ddh.reference', 'f"ddh.{option}', '"ddh"']
    assert spelled_names("'dsh.published_iterations'", "dsh") and not spelled_names('"pretrained.x"', "pca-itq")
    assert "def tags" in tag_sources(type(load_plugins().methods.get("timm-pca-itq")))


def test_every_builtin_method_declares_the_name_it_is_registered_under(builtin_methods):
    for entry in builtin_methods:
        method = entry.factory
        assert isinstance(method, Method)
        assert type(method).name == entry.name, f"{entry.name}: declares name {type(method).name!r}"


def test_no_method_spells_its_own_name_in_its_tags(builtin_methods):
    for entry in builtin_methods:
        method = entry.factory
        assert not spelled_names(tag_sources(type(method)), entry.name), f"{entry.name} spells its name: use own_tags()"
        if type(method).reference is not None:
            own = method.own_tags(method.resolve(method.default_config()))
            assert not [key for key in own if key.startswith(f"{entry.name}.")], entry.name


def test_registration_takes_the_declared_names():
    for plugin in BUILTIN_PLUGINS:
        source = (ROOT / plugin / "__init__.py").read_text()
        assert not re.search(r"""register\(\s*["']""", source), f"{plugin}/__init__.py spells a method's name"


def test_deep_methods_declare_their_reference_and_published_budget(builtin_methods):
    deep = [e for e in builtin_methods if isinstance(e.factory, DeepMethod)]
    assert len(deep) >= 8
    for entry in deep:
        method = entry.factory
        reference = type(method).reference
        assert isinstance(reference, Reference) and reference.code.startswith("github.com/"), entry.name
        assert (reference.epochs is None) != (reference.iterations is None), entry.name  # one budget
        assert list(inspect.signature(method.reference_config).parameters) == ["config"], entry.name
        assert "published_epochs" not in vars(type(method)), entry.name


def test_tags_derive_from_the_declaration(builtin_methods):
    for entry in builtin_methods:
        method = entry.factory
        reference = type(method).reference
        if reference is None:
            continue
        config = method.resolve(method.default_config())
        tags = method.tags(config)
        assert tags[f"{entry.name}.reference"] == reference.code
        budget = ("published_epochs", reference.epochs) if reference.epochs else ("published_iterations", reference.iterations)
        assert tags[f"{entry.name}.{budget[0]}"] == str(budget[1])
        expected = deviation_tags(config, method.reference_config(config), method.deviations(config),
                                  ignore=method.unreferenced)
        assert {k: v for k, v in tags.items() if k.startswith("deviation.")} == expected
        assert all(k.startswith((f"{entry.name}.", "deviation.")) for k in tags), entry.name


def test_a_method_states_only_its_own():
    class Port(Method):
        name = "port"
        reference = Reference("github.com/a/b", iterations=70)
        fixed_deviations = {"input": "why"}

        def default_config(self):
            return OptimizerSpec()

        def own_tags(self, config):
            return {"mode": "x"}

    assert Port().tags(OptimizerSpec(lr=0.5)) == {
        "port.reference": "github.com/a/b", "port.published_iterations": "70", "port.mode": "x",
        "deviation.input": "why", "deviation.config.lr": "0.5 (reference: 0.001)",
    }
    assert Method().tags(OptimizerSpec()) == {}  # no reference, no tags of its own
