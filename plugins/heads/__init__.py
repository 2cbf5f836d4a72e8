"""Hashing heads: features -> relaxed codes ``u``."""

from bench import hookimpl
from plugins.heads.fc import FCHead


@hookimpl
def register_heads(register):
    register("fc", FCHead)
