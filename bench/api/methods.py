"""Methods: named recipes with typed hyperparameters.

Two kinds exist. A :class:`DeepMethod` assembles a registered backbone, hashing head and
loss parts and is trained by the harness's loop. A :class:`FittedMethod` needs no
gradient training (LSH, PCA-ITQ): it is fitted on the training split and encodes.
Hyperparameters are pydantic models with ``extra="forbid"``, so a misspelled
``--set`` key is an error, never silently ignored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base of every typed config: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class PartSpec(StrictModel):
    """A registered part by name, with its options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class LossTerm(StrictModel):
    """One weighted loss part."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = Field(default_factory=dict)


class OptimizerSpec(StrictModel):
    """Optimizer settings. ``decay_scope='kernels'`` decays only conv/linear weights."""

    name: Literal["adam", "sgd", "adamw"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    decay_scope: Literal["kernels", "all"] = "kernels"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


class ScheduleSpec(StrictModel):
    """Learning-rate schedule. Step milestones are fractions of the total step budget."""

    name: Literal["constant", "step"] = "constant"
    milestones: list[float] = Field(default_factory=list)
    gamma: float = 0.1


class TrainingSpec(StrictModel):
    """How the harness's loop trains a deep method."""

    epochs: int = Field(100, ge=1)
    batch_size: int = Field(256, ge=1)
    sampler: Literal["sequential", "shuffle", "balanced"] = "shuffle"
    ids_per_batch: int = Field(10, ge=1)
    selection: Literal["val_map", "train_loss", "last"] = "val_map"
    validate_every: int = Field(5, ge=1)


class DeepMethodConfig(StrictModel):
    """Hyperparameters shared by every deep method; methods subclass it to set defaults."""

    backbone: PartSpec
    head: PartSpec
    losses: list[LossTerm]
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)


class Method:
    """Common to both kinds: a typed config, a description, a bit-length rule."""

    kind: ClassVar[str] = "abstract"
    Config: ClassVar[type[StrictModel]] = StrictModel
    description: ClassVar[str] = ""

    def check_bits(self, bits: int) -> str | None:
        """Return why ``bits`` is unsupported, or ``None`` when it is fine (default: any K >= 1)."""
        return None if bits >= 1 else "bits must be a positive integer"

    def default_config(self) -> StrictModel:
        return self.Config()

    def resolve(self, config: StrictModel) -> StrictModel:
        """Derive settings that depend on others (e.g. a named variant); identity by default."""
        return config

    def tags(self, config: StrictModel) -> dict[str, str]:
        """Extra MLflow tags, e.g. every deviation from the reference implementation."""
        return {}


class DeepMethod(Method):
    """A method the harness trains: backbone + head + loss parts from the registries."""

    kind: ClassVar[str] = "deep"
    Config: ClassVar[type[StrictModel]] = DeepMethodConfig


Encoder = Callable[[np.ndarray], np.ndarray]


class FittedMethod(Method, ABC):
    """A method without gradient training. Subclasses implement :meth:`fit`."""

    kind: ClassVar[str] = "fitted"

    @abstractmethod
    def fit(
        self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel
    ) -> Encoder:
        """Fit on training vectors ``x`` (N, D) float32 with labels ``y``; return an encoder
        mapping (M, D) vectors to relaxed codes (M, bits) whose sign is the binary code."""
