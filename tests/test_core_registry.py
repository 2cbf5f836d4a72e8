"""Registries: lookup, prefix families, option checks, one-line errors."""

import pytest

from bench.api.errors import BenchError
from bench.api.registry import Entry, Registry


def make_registry():
    reg = Registry("head")

    def block(ctx, dims, c=6, block_linear=False):
        return ("block", c, block_linear)

    def timm(ctx, variant, pretrained=False):
        return ("timm", variant, pretrained)

    reg.add(Entry("block", block, "p", "1"))
    reg.add(Entry("timm:", timm, "p", "1"))
    return reg


def test_unknown_name_lists_known_and_suggests_closest():
    with pytest.raises(BenchError) as err:
        make_registry().get("blok")
    assert str(err.value) == "unknown head 'blok'; known: block, timm: (did you mean 'block'?)"


def test_family_resolves_variant():
    assert make_registry().build("timm:resnet18", None) == ("timm", "resnet18", False)


def test_options_checked_against_signature():
    reg = make_registry()
    assert reg.build("block", None, {}, c=4) == ("block", 4, False)
    with pytest.raises(BenchError, match="unknown option 'k' for head 'block'; known options: c, block_linear"):
        reg.build("block", None, {}, k=4)


def test_duplicate_registration_is_an_error():
    reg = make_registry()
    with pytest.raises(BenchError, match="registered twice"):
        reg.add(Entry("block", object, "q", "2"))
