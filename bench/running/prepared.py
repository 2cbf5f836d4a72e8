"""A run with everything resolved, typed by its kind: a :class:`DeepRun` is trained by the
harness (a deep config, acceleration settings), a :class:`FittedRun` is fitted (neither).
``PreparedRun`` is their union, so "deep or fitted?" is one ``isinstance`` that the type
checker follows, never a string or an attribute probe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import torch

from bench.api.methods import DeepMethod, DeepMethodConfig, FittedMethod, StrictModel
from bench.api.pluginhost import PluginHost
from bench.data.faces import FaceData
from bench.running.spec import RunSpec
from bench.training.acceleration import Acceleration


@dataclass(kw_only=True)
class _Resolved:
    """What every prepared run holds, whatever its kind."""

    spec: RunSpec
    host: PluginHost
    device: torch.device
    data: FaceData
    protocol_fingerprint: str
    code_fingerprint: str
    tags: dict[str, str]  # what the run is opened with (bench.running.identity.identity_tags)

    @property
    def checksum(self) -> str:
        """The split checksum of the run's data (computed once, kept on the data)."""
        return self.data.checksum()


@dataclass(kw_only=True)
class DeepRun(_Resolved):
    """A run the harness trains."""

    method: DeepMethod
    config: DeepMethodConfig  # the method's Config, validated once
    acceleration: Acceleration


@dataclass(kw_only=True)
class FittedRun(_Resolved):
    """A run fitted without gradient training (it has no acceleration settings)."""

    method: FittedMethod
    config: StrictModel  # the method's Config, validated once


PreparedRun: TypeAlias = DeepRun | FittedRun
