"""DCBH (Deep Clustering and Block Hashing, ACCV 2018): the reference plugin."""

from bench import hookimpl


@hookimpl
def register_methods(register):
    pass
