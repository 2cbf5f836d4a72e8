"""The identical protocol every method runs under, and its fingerprint.

A protocol fixes the dataset and its split, input size, normalisation, augmentation,
training budget, the shared ("harness-standard") settings and the evaluation. Its
fingerprint hashes all of that plus the split checksum, so only runs with equal
fingerprints are ever compared.

Three standards (:data:`STANDARDS`): ``method-defaults`` (each method's optimizer, batch and
loss under the protocol's budget, data and evaluation), ``harness-standard`` (one optimizer,
batch, budget and augmentation for every deep method, checkpoints chosen on validation mAP)
and ``released`` (each method as its authors' code: its own budget, input, loop and
checkpoint rule; ``epochs`` is then ``None`` unless a budget is given on top, which the run
records as a deviation). ``as-published``, the former name of ``method-defaults``, is still
accepted; it hashes under that old name, so fingerprints recorded before the rename stay equal.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bench.api.methods import OptimizerSpec, StrictModel
from bench.config.hashing import stable_hash

STANDARDS = ("method-defaults", "harness-standard", "released")
STANDARD_ALIASES = {"as-published": "method-defaults"}  # former name -> name
DEFAULT_EPOCHS = 50  # DCBH x 4 bit lengths on a 2-core CPU in ~11 min (docs/dcbh.md)


class EvaluationSpec(StrictModel):
    """What the evaluation engine reports."""

    precision_at: list[int] = Field(default_factory=lambda: [50, 100, 500])
    radius: int = Field(2, ge=0)
    map_at: list[int] = Field(default_factory=list)
    map_at_normalisation: Literal["retrieved", "min_r_k"] = "retrieved"


class HarnessStandard(StrictModel):
    """Settings every deep method shares under ``standard='harness-standard'``."""

    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    batch_size: int = Field(128, ge=1)


class ProtocolConfig(StrictModel):
    """Everything that must be equal for two runs to be comparable."""

    dataset: str = "orl"
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    input_size: int = Field(32, ge=8)
    normalisation: str = "channel-mean-std"  # a registered normaliser (bench plugins lists them)
    augmentation: Literal["none", "flip"] = "none"
    epochs: int | None = Field(None, ge=1)  # None: DEFAULT_EPOCHS, or each method's own under released
    batch_size: int | None = Field(None, ge=1)
    standard: Literal["method-defaults", "harness-standard", "released"] = "method-defaults"
    harness_standard: HarnessStandard = Field(default_factory=HarnessStandard)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)

    @field_validator("standard", mode="before")
    @classmethod
    def _renamed_standard(cls, value: Any) -> Any:
        return STANDARD_ALIASES.get(value, value)

    @model_validator(mode="after")
    def _default_budget(self) -> ProtocolConfig:
        if self.epochs is None and self.standard != "released":
            self.epochs = DEFAULT_EPOCHS
        return self


def hashed_dump(protocol: ProtocolConfig) -> dict[str, Any]:
    """The protocol as fingerprints and config hashes see it: ``method-defaults`` under its
    former name ``as-published``, so runs recorded before the rename keep their hashes.

    >>> hashed_dump(ProtocolConfig(standard="as-published"))["standard"]
    'as-published'
    """
    data = protocol.model_dump(mode="json")
    former = {name: old for old, name in STANDARD_ALIASES.items()}
    data["standard"] = former.get(data["standard"], data["standard"])
    return data


def fingerprint(protocol: ProtocolConfig, split_checksum: str) -> str:
    """Hash of the protocol and the split checksum (hex, 12 chars).

    >>> a = fingerprint(ProtocolConfig(), "abc")
    >>> a == fingerprint(ProtocolConfig(epochs=5), "abc"), a == fingerprint(ProtocolConfig(), "abc")
    (False, True)
    """
    payload = {"protocol": hashed_dump(protocol), "split": split_checksum}
    return stable_hash(payload)[:12]

