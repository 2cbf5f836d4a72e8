"""What a command asks :func:`bench.running.planning.plan_runs` for, as typed objects built
once: the grid (methods x bits x seeds x split seeds) under one protocol, the parts that
replace each method's own (:class:`PartChoice`), and where the runs execute."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.config.protocol import ProtocolConfig
from bench.config.settings import LossEdit
from bench.training.acceleration import AccelerationSpec


@dataclass(frozen=True, kw_only=True)
class PartChoice:
    """What replaces parts of every method's config: ``--backbone`` (with
    ``--backbone-mode``), ``--head``, ``--loss`` edits and ``--set`` settings."""

    backbone: str | None = None
    backbone_mode: str | None = None
    head: str | None = None
    loss: Sequence[LossEdit] = ()
    sets: Sequence[tuple[str, Any]] = ()


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """The runs a command asks for: every method x bits x seed on each split seed (default:
    the protocol's ``split_seed``), with the parts of ``parts``, on ``device`` with
    ``acceleration`` (deep runs only) and the dataset's files at ``data_root``."""

    methods: Sequence[str]
    bits: Sequence[int]
    seeds: Sequence[int]
    protocol: ProtocolConfig
    parts: PartChoice = PartChoice()
    data_root: str | None = None
    device: str = "auto"
    acceleration: AccelerationSpec = field(default_factory=AccelerationSpec)
    split_seeds: Sequence[int] | None = None
