"""Backbones: networks mapping images to named features."""

from bench import hookimpl


@hookimpl
def register_backbones(register):
    pass
