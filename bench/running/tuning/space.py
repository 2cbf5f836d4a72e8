"""The search space of a tuning study: the method's declared one
(:attr:`bench.api.methods.Method.search_space`) or one from a YAML file, checked against the
method's config before anything is written, and turned into Optuna distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.api.errors import BenchError
from bench.api.methods import DeepMethod, Method
from bench.api.search import Dimension, parse_space
from bench.config.hashing import stable_hash


def read_space_file(path: Path, methods: list[str]) -> dict[str, dict[str, Dimension]]:
    """The space of every method in ``methods`` from a YAML file: either one space for all
    (``--set`` key -> dimension) or one per method (method name -> space)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"--space {path}: no such file; give a YAML file of key: {{kind, low, high, log}}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BenchError(f"--space {path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict) or not data:
        raise BenchError(f"--space {path}: expected a mapping of --set keys to ranges")
    per_method = set(data) <= set(methods) and all(isinstance(v, dict) and "kind" not in v for v in data.values())
    try:
        if per_method:
            return {m: parse_space(data[m], f"--space {path} [{m}]") for m in methods if m in data}
        space = parse_space(data, f"--space {path}")
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    return {m: space for m in methods}


def method_space(name: str, method: Method, from_file: dict[str, dict[str, Dimension]] | None) -> dict[str, Dimension]:
    """The space tuned for ``name``: the file's when it gives one, else the declared one.
    Only a deep method (trained by the harness) has one."""
    if not isinstance(method, DeepMethod):
        raise BenchError(f"method '{name}' is not trained by the harness (kind {method.kind}); "
                         "bench tune tunes deep methods")
    space = (from_file or {}).get(name) or dict(method.search_space)
    if not space:
        raise BenchError(f"method '{name}' declares no search space; give one with --space FILE "
                         "(YAML: optimizer.lr: {kind: float, low: 1.0e-4, high: 1.0e-2, log: true})")
    return space


def space_hash(space: dict[str, Dimension]) -> str:
    """Identifies a space (part of the default study name, so a new space starts a new study).

    >>> from bench.api.search import log_uniform
    >>> space_hash({"optimizer.lr": log_uniform(1e-4, 1e-2)}) == space_hash({"optimizer.lr": log_uniform(1e-4, 1e-1)})
    False
    """
    return stable_hash({k: d.model_dump(mode="json") for k, d in sorted(space.items())})[:8]


def corners(space: dict[str, Dimension]) -> list[dict[str, Any]]:
    """The low and the high end of every dimension (first and last choice): planning them
    checks every key against the method's config before a trial starts.

    >>> from bench.api.search import choice, integer
    >>> corners({"a": integer(1, 4), "b": choice("x", "y")})
    [{'a': 1, 'b': 'x'}, {'a': 4, 'b': 'y'}]
    """
    def end(d: Dimension, high: bool) -> Any:
        if d.kind == "categorical":
            return d.options()[-1 if high else 0]
        value = d.bounds()[1 if high else 0]
        return int(value) if d.kind == "int" else value
    return [{k: end(d, high) for k, d in space.items()} for high in (False, True)]


def distributions(space: dict[str, Dimension]) -> dict[str, Any]:
    """Optuna distributions of ``space`` (what ``Study.ask`` and Ray's ``OptunaSearch`` take)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for key, d in space.items():
        if d.kind == "categorical":
            out[key] = CategoricalDistribution(d.options())
        elif d.kind == "int":
            low, high = map(int, d.bounds())
            out[key] = IntDistribution(low, high, log=d.log)
        else:
            out[key] = FloatDistribution(*d.bounds(), log=d.log)
    return out


def suggest(trial: Any, space: dict[str, Dimension]) -> dict[str, Any]:
    """The values an Optuna trial suggests for ``space`` (an enqueued trial's fixed values)."""
    params = {}
    for key, d in space.items():
        if d.kind == "categorical":
            params[key] = trial.suggest_categorical(key, d.options())
        elif d.kind == "int":
            params[key] = trial.suggest_int(key, *map(int, d.bounds()), log=d.log)
        else:
            params[key] = trial.suggest_float(key, *d.bounds(), log=d.log)
    return params
