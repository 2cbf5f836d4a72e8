"""The identical protocol every method runs under, and its fingerprint.

A protocol fixes the dataset and its split, input size, normalisation, augmentation,
training budget, the shared ("harness-standard") settings and the evaluation. Its
fingerprint hashes all of that plus the split checksum, so only runs with equal
fingerprints are ever compared.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_serializer

from bench.api.methods import OptimizerSpec, StrictModel
from bench.config.hashing import stable_hash


class EvaluationSpec(StrictModel):
    """What the evaluation engine reports."""

    precision_at: list[int] = Field(default_factory=lambda: [50, 100, 500])
    radius: int = Field(2, ge=0)
    map_at: list[int] = Field(default_factory=list)
    map_at_normalisation: Literal["retrieved", "min_r_k"] = "retrieved"
    # plugin metrics registered as opt-in (costly, e.g. a sort per query) to compute too,
    # by name: e.g. ["map_legacy_argsort"]; `bench plugins` lists the registered metrics
    opt_in_metrics: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _without_empty_opt_in(self, handler: Any) -> dict[str, Any]:
        """Leave ``opt_in_metrics`` out while it is empty, so protocols (and their
        fingerprints) that ask for none read as they did before the field existed.

        >>> "opt_in_metrics" in EvaluationSpec().model_dump(), EvaluationSpec(opt_in_metrics=["m"]).model_dump()["opt_in_metrics"]
        (False, ['m'])
        """
        data = handler(self)
        if not self.opt_in_metrics:
            data.pop("opt_in_metrics", None)
        return data


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


def fingerprint(protocol: ProtocolConfig, split_checksum: str) -> str:
    """Hash of the protocol and the split checksum (hex, 12 chars).

    >>> a = fingerprint(ProtocolConfig(), "abc")
    >>> a == fingerprint(ProtocolConfig(epochs=5), "abc"), a == fingerprint(ProtocolConfig(), "abc")
    (False, True)
    """
    payload = {"protocol": protocol.model_dump(mode="json"), "split": split_checksum}
    return stable_hash(payload)[:12]

