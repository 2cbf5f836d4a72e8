"""Search spaces for ``bench tune``: typed ranges of a method's hyperparameters.

A method declares its space next to its config, as the class attribute
:attr:`bench.api.methods.Method.search_space`: a mapping from a ``--set`` key (the same keys
``bench run --set`` takes: ``optimizer.lr``, ``loss.quantization.weight``,
``loss.dsh-pairwise.margin``, ...) to a :class:`Dimension`. The harness treats it as data: a
trial's suggested values are applied exactly as ``--set key=value`` items, so a space can name
any setting the method's config validates, and a YAML file (``bench tune --space FILE``) can
replace it with the same structure::

    optimizer.lr: {kind: float, low: 1.0e-4, high: 1.0e-2, log: true}
    loss.quantization.weight: {kind: float, low: 0.0, high: 0.1}
    training.batch_size: {kind: categorical, choices: [64, 128, 256]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError, model_validator

from bench.api.methods import StrictModel


class Dimension(StrictModel):
    """One tuned hyperparameter: a float or integer range (``log``: sampled uniformly in log
    space) or a list of categorical choices.

    >>> Dimension(kind="float", low=1e-4, high=1e-2, log=True).describe()
    'float in [0.0001, 0.01], log'
    """

    kind: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> Dimension:
        if self.kind == "categorical":
            if not self.choices or self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical dimension takes a non-empty choices list only")
            return self
        if self.choices is not None or self.low is None or self.high is None:
            raise ValueError(f"a {self.kind} dimension needs low and high (and no choices)")
        if not self.low < self.high:
            raise ValueError(f"low must be below high (got low={self.low}, high={self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got low={self.low})")
        return self

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a float or int range (the validator has made sure both are set)."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.kind} dimension has no range")
        return self.low, self.high

    def options(self) -> list[Any]:
        """The choices of a categorical dimension (the validator has made sure they are set)."""
        if self.choices is None:
            raise ValueError(f"a {self.kind} dimension has no choices")
        return self.choices

    def describe(self) -> str:
        """One line for tables and docs."""
        if self.kind == "categorical":
            return f"one of {self.choices}"
        low, high = (int(v) if self.kind == "int" else v for v in self.bounds())
        return f"{self.kind} in [{low:g}, {high:g}]" + (", log" if self.log else "")


def log_uniform(low: float, high: float) -> Dimension:
    """A float sampled uniformly in log space (learning rates, loss weights)."""
    return Dimension(kind="float", low=low, high=high, log=True)


def uniform(low: float, high: float) -> Dimension:
    """A float sampled uniformly."""
    return Dimension(kind="float", low=low, high=high)


def integer(low: int, high: int, log: bool = False) -> Dimension:
    """An integer in ``[low, high]``."""
    return Dimension(kind="int", low=low, high=high, log=log)


def choice(*values: Any) -> Dimension:
    """One of ``values``."""
    return Dimension(kind="categorical", choices=list(values))


def parse_space(data: Mapping[str, Any], where: str) -> dict[str, Dimension]:
    """A space from plain data (a YAML mapping of ``--set`` key -> dimension fields); every
    problem is a :class:`ValueError` naming the key.

    >>> parse_space({"optimizer.lr": {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True}}, "f")
    {'optimizer.lr': Dimension(kind='float', low=0.0001, high=0.01, log=True, choices=None)}
    """
    space = {}
    for key, fields in data.items():
        if not isinstance(fields, Mapping):
            raise ValueError(f"{where}: '{key}' must map to kind/low/high/log or kind/choices, got {fields!r}")
        try:
            space[str(key)] = Dimension.model_validate(dict(fields))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            detail = str(err["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{where}: '{key}': {field + ': ' if field else ''}{detail}") from None
    return space
