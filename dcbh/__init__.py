"""DCBH (Deep Clustering and Block Hashing, ACCV 2018): the reference plugin."""

from bench import hookimpl
from dcbh.method import DCBH


@hookimpl
def register_methods(register):
    register(DCBH.name, DCBH())
