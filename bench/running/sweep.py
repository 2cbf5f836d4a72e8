"""Sweep files: a YAML grid of runs (methods x bits x seeds x datasets x overrides).

::

    methods: [dcbh, ddh]
    bits: [12, 24, 36, 48]
    seeds: [0, 1, 2]
    datasets: [orl]
    split_seeds: [0, 1, 2, 3]       # optional: every run on each split (e.g. with protocol.split: open-set)
    overrides:                      # --set keys; a list sweeps its values
      protocol.epochs: 50
      dcbh.optimizer.lr: [1.0e-3, 1.0e-4]
    data_root: ~/data               # or one root per dataset: {youtube-faces: /data/ytf}
    experiment: my-sweep            # optional MLflow experiment name

A list value under ``overrides`` is swept; to set a list-valued key, wrap the list once
more (``schedule.milestones: [[0.5, 0.75]]``). Runs with equal configuration (a setting
aimed at another method changes nothing) collapse into one; each run is identified by its
stable :meth:`bench.running.spec.RunSpec.config_hash`; runs that differ by a swept setting
carry it in their names (``sweep-tiny[optimizer.lr=0.001]-8b-s0``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, field_validator

from bench.api.errors import BenchError
from bench.api.methods import StrictModel
from bench.api.pluginhost import PluginHost
from bench.config.settings import build_protocol, split_sets, validate
from bench.running.planning import PreparedRun, plan_runs
from bench.running.request import PartChoice, RunRequest

Seed = Annotated[int, Field(ge=0, lt=2**32)]  # numpy's seeds, as --seeds takes them


class SweepFile(StrictModel):
    """The keys a sweep file may have."""

    methods: list[str]
    bits: list[int]
    seeds: list[Seed] = [0]
    datasets: list[str]
    split_seeds: list[Seed] | None = None
    overrides: dict[str, Any] = {}
    data_root: str | dict[str, str] | None = None
    experiment: str | None = None
    device: str = "auto"

    @field_validator("methods", "bits", "seeds", "datasets", "split_seeds", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return value if isinstance(value, list) or value is None else [value]

    def root_for(self, dataset: str) -> str | None:
        """The data root of ``dataset`` (one root for all, or one per dataset)."""
        if isinstance(self.data_root, dict):
            return self.data_root.get(dataset)
        return self.data_root


def load_sweep(path: Path) -> SweepFile:
    """Read and validate a sweep file; every problem is a one-line :class:`BenchError`."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"sweep file {path} does not exist; pass the path of a YAML sweep file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise BenchError(f"sweep file {path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise BenchError(f"sweep file {path}: expected a mapping with methods, bits, seeds, datasets")
    return validate(SweepFile, data, "", source=f"sweep file {path}")


MAX_RUNS = 10_000  # grid size `bench sweep` accepts unless --max-runs raises it


def override_grid(overrides: dict[str, Any]) -> Iterator[list[tuple[str, Any]]]:
    """Every combination of the swept override values (a list sweeps; a scalar is fixed),
    one at a time (a grid is never held whole).

    >>> list(override_grid({"a": 1, "b": [2, 3]}))
    [[('a', 1), ('b', 2)], [('a', 1), ('b', 3)]]
    >>> list(override_grid({"m": [[0.5, 0.75]]})), list(override_grid({}))
    ([[('m', [0.5, 0.75])]], [[]])
    """
    axes = [[(key, _number(v)) for v in value] if isinstance(value, list) else [(key, _number(value))]
            for key, value in overrides.items()]
    for key, value in overrides.items():
        if isinstance(value, list) and not value:
            raise BenchError(f"sweep override '{key}': empty list; give at least one value")
    return (list(combo) for combo in itertools.product(*axes))


def grid_size(sweep: SweepFile) -> int:
    """Runs the sweep's grid spans before equal configurations collapse, counted from its lists.

    >>> grid_size(SweepFile(methods=["a", "b"], bits=[12, 24], datasets=["orl"], overrides={"x": [1, 2, 3], "y": 4}))
    12
    """
    lengths = [len(sweep.methods), len(sweep.bits), len(sweep.seeds), len(sweep.datasets),
               len(sweep.split_seeds or [0])]
    lengths += [len(v) for v in sweep.overrides.values() if isinstance(v, list)]
    return math.prod(lengths)


def check_grid_size(sweep: SweepFile, limit: int = MAX_RUNS) -> None:
    """A one-line error when the grid spans more than ``limit`` runs (before any is built)."""
    size = grid_size(sweep)
    if size > limit:
        raise BenchError(f"the sweep spans {size:,} runs (the product of its lists), more than the limit of "
                         f"{limit:,}; sweep fewer values, or raise the limit with --max-runs {size}")


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; treat it as the number it is (as ``--set`` does).

    >>> _number("1e-3"), _number("adam"), _number(2)
    (0.001, 'adam', 2)
    """
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def expand(host: PluginHost, sweep: SweepFile, limit: int = MAX_RUNS) -> list[PreparedRun]:
    """All runs of the sweep, validated and prepared, with repeated configurations dropped;
    a grid larger than ``limit`` is refused before anything is built, and the first
    combination is checked (every key) before the next one is built."""
    check_grid_size(sweep, limit)
    runs: list[PreparedRun] = []
    seen: set[str] = set()
    for dataset in sweep.datasets:
        if dataset not in host.datasets:
            host.datasets.resolve(dataset)  # raises the standard "unknown dataset" error
        for combo in override_grid(sweep.overrides):
            dataset_sets, protocol_sets, method_sets = split_sets(combo)
            protocol = build_protocol({"dataset": dataset}, protocol_sets, dataset_sets)
            request = RunRequest(methods=sweep.methods, bits=sweep.bits, seeds=sweep.seeds, protocol=protocol,
                                 parts=PartChoice(sets=method_sets), data_root=sweep.root_for(dataset),
                                 device=sweep.device, split_seeds=sweep.split_seeds)
            for run in plan_runs(host, request):
                key = f"{run.spec.config_hash()}:{run.spec.data_root}"
                if key not in seen:
                    seen.add(key)
                    runs.append(run)
    return runs
