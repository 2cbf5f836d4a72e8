"""Baselines: DDH, DSH and the non-learned floors (LSH, PCA-ITQ, PCA-sign)."""

from bench import hookimpl
from baselines.lsh import LSH


@hookimpl
def register_methods(register):
    register("lsh", LSH())
