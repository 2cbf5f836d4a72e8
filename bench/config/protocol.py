"""The identical protocol every method runs under, and its fingerprint.

A protocol fixes the dataset and its split rule (closed-set or open-set), input size, normalisation, augmentation,
training budget, the shared ("harness-standard") settings and the evaluation. Its
fingerprint hashes all of that (except the split seed) plus the checksum of the dataset's
images and identities, so only runs with equal fingerprints are ever compared, and runs
on repeated splits of one protocol are compared together. A fitted method's
fingerprint leaves the training part out (:func:`evaluation_fingerprint`), so it stands
beside deep runs of any budget.

Three standards (:data:`STANDARDS`): ``method-defaults`` (each method's optimizer, batch and
loss under the protocol's budget, data and evaluation), ``harness-standard`` (one optimizer,
batch, budget and augmentation for every deep method, checkpoints chosen on validation mAP)
and ``released`` (each method as its authors' code: its own budget, input, loop and
checkpoint rule; ``epochs`` is then ``None`` unless a budget is given on top, which the run
records as a deviation). ``as-published``, the former name of ``method-defaults``, is still
accepted and hashes under that old name, so a run's fingerprint and config hash do not depend
on which of the two names it was given.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from bench.api.methods import GrowingModel, OptimizerSpec, StrictModel
from bench.config.hashing import stable_hash

STANDARDS = ("method-defaults", "harness-standard", "released")
STANDARD_ALIASES = {"as-published": "method-defaults"}  # former name -> name
DEFAULT_EPOCHS = 50  # DCBH x 4 bit lengths on a 2-core CPU in ~11 min (docs/dcbh.md)
DEFAULT_PRECISION_AT = (50, 100, 500)  # precision_at=None: those of these the gallery holds


class EvaluationSpec(GrowingModel):
    """What the evaluation engine reports. ``opt_in_metrics`` is left out of its dumps while
    empty, so protocols (and their fingerprints) that ask for none read as before it existed.
    ``precision_at`` ``None`` (the default) suits each gallery: the K of
    :data:`DEFAULT_PRECISION_AT` no larger than it (``precision_at_r`` suits any gallery).

    >>> "opt_in_metrics" in EvaluationSpec().model_dump(), EvaluationSpec(opt_in_metrics=["m"]).model_dump()["opt_in_metrics"]
    (False, ['m'])
    """

    added_fields: ClassVar[tuple[str, ...]] = ("opt_in_metrics",)

    precision_at: list[int] | None = None  # None: DEFAULT_PRECISION_AT up to the gallery size
    radius: int = Field(2, ge=0)
    map_at: list[int] = Field(default_factory=list)
    map_at_normalisation: Literal["retrieved", "min_r_k"] = "retrieved"
    # plugin metrics registered as opt-in (costly, e.g. a sort per query) to compute too,
    # by name: e.g. ["map_legacy_argsort"]; `bench plugins` lists the registered metrics
    opt_in_metrics: list[str] = Field(default_factory=list)

    def precision_ks(self, gallery: int) -> list[int]:
        """The K of precision at K to report for a gallery of ``gallery`` items.

        >>> EvaluationSpec().precision_ks(278), EvaluationSpec(precision_at=[500]).precision_ks(278)
        ([50, 100], [500])
        """
        if self.precision_at is not None:
            return list(self.precision_at)
        return [k for k in DEFAULT_PRECISION_AT if k <= gallery]


class OpenSetSpec(StrictModel):
    """Sizes of the identity-disjoint (``open-set``) partition.

    ``retrieval_identities``: how many identities only ever serve as gallery and queries
    (``None``: 30% of the dataset's identities, rounded, e.g. 12 of ORL's 40); the others
    are training identities. Each retrieval identity gives ``queries`` images as queries and
    the rest to the gallery; each training identity gives ``val`` held-out images to
    validation (checkpoint selection) and the rest to training.
    """

    retrieval_identities: int | None = Field(None, ge=1)
    queries: int = Field(2, ge=1)
    val: int = Field(1, ge=0)


class BackboneMode(StrEnum):
    """How deep methods use a pretrained backbone: ``FROZEN`` (its features computed once and
    cached, only the hashing head and the loss train) or ``FINE_TUNE`` (trained with the rest,
    at ``lr_mult`` times the learning rate)."""

    FROZEN = "frozen"
    FINE_TUNE = "fine-tune"


FINE_TUNE_LR_MULT = 0.1  # OrthoHash's backbone rate (x0.1 of the head's)


class PretrainedSpec(StrictModel):
    """The pretrained backbone every deep method of the protocol runs on (``--backbone NAME``,
    ``--backbone-mode``), replacing each method's own; its head, loss and optimizer stay.
    ``lr_mult``: the backbone's learning-rate multiplier when fine-tuned (default
    :data:`FINE_TUNE_LR_MULT`); ``None`` when frozen. Part of the fingerprint, so runs on a
    pretrained backbone never share a leaderboard row with runs trained from scratch, nor
    frozen runs with fine-tuned ones.

    >>> PretrainedSpec(backbone="b", mode="fine-tune").lr_mult, PretrainedSpec(backbone="b").lr_mult
    (0.1, None)
    """

    backbone: str = ""  # filled from --backbone when given as a setting only
    mode: BackboneMode = BackboneMode.FROZEN
    lr_mult: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _mode_rate(self) -> PretrainedSpec:
        if self.mode is BackboneMode.FINE_TUNE and self.lr_mult is None:
            self.lr_mult = FINE_TUNE_LR_MULT
        elif self.mode is BackboneMode.FROZEN:
            self.lr_mult = None
        return self


class HarnessStandard(StrictModel):
    """Settings every deep method shares under ``standard='harness-standard'``."""

    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    batch_size: int = Field(128, ge=1)


class ProtocolConfig(GrowingModel):
    """Everything that must be equal for two runs to be comparable. The split settings are
    left out of its dumps while they hold their defaults (the closed-set split 0), so a
    closed-set protocol dumps and hashes as it did before they existed; so is ``pretrained``
    while ``None`` (every deep method on its own backbone, from scratch)."""

    added_fields: ClassVar[tuple[str, ...]] = ("split", "split_seed", "open_set", "pretrained")

    dataset: str = "orl"
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    # closed-set: every identity in training and retrieval (DDH); open-set: disjoint identities
    split: Literal["closed-set", "open-set"] = "closed-set"
    split_seed: int = Field(0, ge=0)  # which partition (open-set) or per-identity image split (closed-set)
    open_set: OpenSetSpec = Field(default_factory=OpenSetSpec)
    input_size: int = Field(32, ge=8)
    normalisation: str = "channel-mean-std"  # a registered normaliser (bench plugins lists them)
    augmentation: Literal["none", "flip"] = "none"
    epochs: int | None = Field(None, ge=1)  # None: DEFAULT_EPOCHS, or each method's own under released
    batch_size: int | None = Field(None, ge=1)
    standard: Literal["method-defaults", "harness-standard", "released"] = "method-defaults"
    harness_standard: HarnessStandard = Field(default_factory=HarnessStandard)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    pretrained: PretrainedSpec | None = None  # None: each deep method's own backbone, from scratch

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


# What only training uses: a fitted method (lsh, pca-itq) is the same under any value of these.
TRAINING_FIELDS = frozenset({"augmentation", "epochs", "batch_size", "standard", "harness_standard", "pretrained"})


def fingerprint(protocol: ProtocolConfig, pool_checksum: str, trained: bool = True) -> str:
    """Hash of the protocol (its split rule and sizes, not its ``split_seed``) and the
    checksum of the dataset's images and identities (hex, 12 chars). For a method that does
    not train (``trained=False``) it is :func:`evaluation_fingerprint`: the training budget
    and settings are left out, so a fitted run is one result under any budget.

    Runs on different split seeds of one protocol share the fingerprint, so a leaderboard
    pools them; each run's own partition is its split checksum (tag ``split_checksum``).

    >>> a = fingerprint(ProtocolConfig(), "abc")
    >>> a == fingerprint(ProtocolConfig(epochs=5), "abc"), a == fingerprint(ProtocolConfig(), "abc")
    (False, True)
    >>> a == fingerprint(ProtocolConfig(split_seed=3), "abc"), a == fingerprint(ProtocolConfig(split="open-set"), "abc")
    (True, False)
    >>> fitted = fingerprint(ProtocolConfig(), "abc", trained=False)
    >>> fitted == fingerprint(ProtocolConfig(epochs=5), "abc", trained=False) == evaluation_fingerprint(ProtocolConfig(), "abc")
    True
    """
    if not trained:
        return evaluation_fingerprint(protocol, pool_checksum)
    data = hashed_dump(protocol)
    data.pop("split_seed", None)
    payload = {"protocol": data, "data": pool_checksum}
    return stable_hash(payload)[:12]


def evaluation_fingerprint(protocol: ProtocolConfig, pool_checksum: str) -> str:
    """Hash of what every run under the protocol shares, trained or fitted: the data and its
    split rule, input size, normalisation and evaluation (the protocol without
    :data:`TRAINING_FIELDS`). Reports place fitted runs beside the deep runs that share it.

    >>> evaluation_fingerprint(ProtocolConfig(), "abc") == evaluation_fingerprint(ProtocolConfig(epochs=5), "abc")
    True
    >>> evaluation_fingerprint(ProtocolConfig(), "abc") == evaluation_fingerprint(ProtocolConfig(input_size=64), "abc")
    False
    """
    shared = protocol.model_dump(mode="json", exclude={*TRAINING_FIELDS, "split_seed"})
    return stable_hash({"protocol": shared, "data": pool_checksum, "kind": "evaluation"})[:12]

