"""The identical protocol every method runs under, and its fingerprint.

A protocol fixes the dataset and its split, input size, normalisation, augmentation,
training budget, the shared ("harness-standard") settings and the evaluation. Its
fingerprint hashes all of that plus the split checksum, so only runs with equal
fingerprints are ever compared. A fitted method's fingerprint leaves the training part out
(:func:`evaluation_fingerprint`), so it stands beside deep runs of any budget.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bench.api.methods import OptimizerSpec, StrictModel
from bench.config.hashing import stable_hash


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
    epochs: int = Field(50, ge=1)  # DCBH x 4 bit lengths on a 2-core CPU in ~11 min (docs/dcbh.md)
    batch_size: int | None = Field(None, ge=1)
    standard: Literal["as-published", "harness-standard"] = "as-published"
    harness_standard: HarnessStandard = Field(default_factory=HarnessStandard)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)


# What only training uses: a fitted method (lsh, pca-itq) is the same under any value of these.
TRAINING_FIELDS = frozenset({"augmentation", "epochs", "batch_size", "standard", "harness_standard"})


def fingerprint(protocol: ProtocolConfig, split_checksum: str, trained: bool = True) -> str:
    """Hash of the protocol and the split checksum (hex, 12 chars). For a method that does
    not train (``trained=False``) it is :func:`evaluation_fingerprint`: the training budget
    and settings are left out, so a fitted run is one result under any budget.

    >>> a = fingerprint(ProtocolConfig(), "abc")
    >>> a == fingerprint(ProtocolConfig(epochs=5), "abc"), a == fingerprint(ProtocolConfig(), "abc")
    (False, True)
    >>> fitted = fingerprint(ProtocolConfig(), "abc", trained=False)
    >>> fitted == fingerprint(ProtocolConfig(epochs=5), "abc", trained=False) == evaluation_fingerprint(ProtocolConfig(), "abc")
    True
    """
    if not trained:
        return evaluation_fingerprint(protocol, split_checksum)
    payload = {"protocol": protocol.model_dump(mode="json"), "split": split_checksum}
    return stable_hash(payload)[:12]


def evaluation_fingerprint(protocol: ProtocolConfig, split_checksum: str) -> str:
    """Hash of what every run under the protocol shares, trained or fitted: the data and its
    split, input size, normalisation and evaluation (the protocol without
    :data:`TRAINING_FIELDS`). Reports place fitted runs beside the deep runs that share it.

    >>> evaluation_fingerprint(ProtocolConfig(), "abc") == evaluation_fingerprint(ProtocolConfig(epochs=5), "abc")
    True
    >>> evaluation_fingerprint(ProtocolConfig(), "abc") == evaluation_fingerprint(ProtocolConfig(input_size=64), "abc")
    False
    """
    shared = protocol.model_dump(mode="json", exclude=set(TRAINING_FIELDS))
    return stable_hash({"protocol": shared, "split": split_checksum, "kind": "evaluation"})[:12]

