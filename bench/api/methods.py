"""Methods: named recipes with typed hyperparameters.

Two kinds exist. A :class:`DeepMethod` assembles a registered backbone, hashing head and
loss parts and is trained by the harness's loop. A :class:`FittedMethod` needs no
gradient training (LSH, PCA-ITQ): it is fitted on the training split and encodes.
Hyperparameters are pydantic models with ``extra="forbid"``, so a misspelled
``--set`` key is an error, never silently ignored.

Every part and the optimizer carry learning-rate and weight-decay multipliers
(``PartSpec.lr_mult``, ``LossTerm.decay_mult``, ``OptimizerSpec.bias_lr_mult``; see
:func:`bench.training.assembly.build_optimizer`): OrthoHash trains its pretrained backbone
at ``lr_mult=0.1``, Caffe's DSH its biases at twice the rate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from bench.api.deviations import deviation_tags

if TYPE_CHECKING:
    from bench.api.search import Dimension


class StrictModel(BaseModel):
    """Base of every typed config: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class GrowingModel(StrictModel):
    """A config that gained fields after runs were recorded with it: the fields in
    :attr:`added_fields` are left out of its dumps while they hold their defaults, so a
    config that does not use them dumps (and hashes, and logs its parameters) as before.

    >>> PartSpec(name="fc").model_dump(), PartSpec(name="fc", lr_mult=0.1).model_dump()["lr_mult"]
    ({'name': 'fc', 'options': {}}, 0.1)
    """

    added_fields: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unused_added_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in self.added_fields:
            if getattr(self, name) == type(self).model_fields[name].get_default(call_default_factory=True):
                data.pop(name, None)
        return data


class PartSpec(GrowingModel):
    """A registered part by name, with its options; its parameters train at ``lr_mult``
    times the learning rate and ``decay_mult`` times the weight decay."""

    added_fields: ClassVar[tuple[str, ...]] = ("lr_mult", "decay_mult")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    lr_mult: float = Field(1.0, ge=0)
    decay_mult: float = Field(1.0, ge=0)


class LossTerm(GrowingModel):
    """One weighted loss part; ``lr_mult``/``decay_mult`` scale the learning rate and
    weight decay of the parameters it owns (classifier weights, centres)."""

    added_fields: ClassVar[tuple[str, ...]] = ("lr_mult", "decay_mult")

    name: str
    weight: float = 1.0
    options: dict[str, Any] = Field(default_factory=dict)
    lr_mult: float = Field(1.0, ge=0)
    decay_mult: float = Field(1.0, ge=0)


class OptimizerSpec(GrowingModel):
    """Optimizer settings. ``decay_scope='kernels'`` decays only conv/linear weights (the
    kernels); ``bias_lr_mult`` scales the learning rate of every other parameter (biases,
    normalisation scales and shifts, centres). ``amsgrad`` applies to adam/adamw (DCDH);
    ``momentum`` applies to ``sgd`` and ``rmsprop`` (torch's RMSprop with its default
    smoothing 0.99 and ``eps``; DPSH, HashNet and CSQ set momentum 0)."""

    added_fields: ClassVar[tuple[str, ...]] = ("bias_lr_mult", "amsgrad")

    name: Literal["adam", "sgd", "adamw", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    decay_scope: Literal["kernels", "all"] = "kernels"
    momentum: float = Field(0.9, ge=0, allow_inf_nan=False)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0, allow_inf_nan=False)
    bias_lr_mult: float = Field(1.0, ge=0)
    amsgrad: bool = False


class ScheduleSpec(StrictModel):
    """Learning-rate schedule. Step milestones are fractions of the total step budget."""

    name: Literal["constant", "step"] = "constant"
    milestones: list[float] = Field(default_factory=list)
    gamma: float = 0.1


class TrainingSpec(GrowingModel):
    """How the harness's loop trains a deep method.

    The loop options after ``validate_every`` reproduce released training loops (each off by
    default; a method turns them on in its :meth:`Method.released_config`):
    ``iterations`` (a budget in steps: training stops after that many, ``epochs`` is ignored),
    ``holdout_fraction`` (the last fraction of the training arrays, in file order, is never
    trained on: Keras ``validation_split``; the gallery stays the whole training split),
    ``early_stop_patience`` (stop once the selection score has not improved for more than that
    many epochs: Keras 1 ``EarlyStopping``), ``restore_best_every`` (every that many epochs,
    continue from the selected checkpoint: weights, buffers, optimizer state),
    ``extra_bn_pass`` (after each step, one more training-mode forward of the batch without
    gradients, so BatchNorm running statistics update twice per step) and ``selection_l2``
    (the ``train_loss`` selection adds the penalty the coupled weight decay stands for,
    ``weight_decay / 2 * sum ||W||^2`` over the decayed parameters, at the epoch's end).
    ``init_from``: the ``checkpoint.pt`` of another run; its model entries of equal name and
    shape are loaded before training, the others keep their initialisation (fine-tuning).
    """

    added_fields: ClassVar[tuple[str, ...]] = (
        "iterations", "holdout_fraction", "early_stop_patience", "restore_best_every",
        "extra_bn_pass", "selection_l2", "init_from",
    )

    epochs: int = Field(100, ge=1)
    batch_size: int = Field(256, ge=1)
    sampler: Literal["sequential", "shuffle", "balanced"] = "shuffle"
    ids_per_batch: int = Field(10, ge=1)
    selection: Literal["val_map", "train_loss", "last"] = "val_map"
    validate_every: int = Field(5, ge=1)
    iterations: int | None = Field(None, ge=1)
    holdout_fraction: float = Field(0.0, ge=0, lt=1)
    early_stop_patience: int = Field(0, ge=0)
    restore_best_every: int = Field(0, ge=0)
    extra_bn_pass: bool = False
    selection_l2: bool = False
    init_from: str | None = None


class DeepMethodConfig(GrowingModel):
    """Hyperparameters shared by every deep method; methods subclass it to set defaults.

    ``normalisation`` / ``augmentation``: the method's own input pipeline (a registered
    normaliser; ``none`` or ``flip``), replacing the protocol's; ``None`` keeps the protocol's.
    Methods set them in their released configuration."""

    added_fields: ClassVar[tuple[str, ...]] = ("normalisation", "augmentation")

    backbone: PartSpec
    head: PartSpec
    losses: list[LossTerm]
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    normalisation: str | None = None
    augmentation: Literal["none", "flip"] | None = None


@dataclass(frozen=True)
class Reference:
    """The published code a method reproduces and the budget it was published with: epochs,
    or iterations for a solver that counts them.

    >>> Reference("github.com/a/b (PyTorch)", epochs=150).tags()
    {'reference': 'github.com/a/b (PyTorch)', 'published_epochs': '150'}
    """

    code: str  # where and which files: "github.com/xjcvip007/DDH (Keras 1, DDH.py)"
    epochs: int | None = None
    iterations: int | None = None

    def tags(self) -> dict[str, str]:
        """The reference and its published budget, as a method's own tags (without its name)."""
        budget = {"published_epochs": self.epochs, "published_iterations": self.iterations}
        return {"reference": self.code, **{k: str(v) for k, v in budget.items() if v is not None}}


class Method:
    """Common to both kinds: an identity, a typed config and a bit-length rule. ``bench
    plugins`` describes a method by its class docstring's first paragraph.

    A method declares who it is once, as class attributes: its :attr:`name` (what it is
    registered under and the prefix of its own tags), its :attr:`reference` (the published code
    and budget; ``None`` for a floor) and what it cannot reproduce (:attr:`fixed_deviations`);
    :meth:`tags` derives every tag from them.
    """

    kind: ClassVar[str] = "abstract"
    #: the registered name (``register(method.name, method)``); its own tags are ``<name>.<key>``
    name: ClassVar[str] = ""
    #: the published code the method reproduces, with its budget; ``None``: none (a floor)
    reference: ClassVar[Reference | None] = None
    #: deviations from the reference a port cannot avoid (or chooses), always true
    fixed_deviations: ClassVar[dict[str, str]] = {}
    #: settings never compared with the reference configuration (e.g. ``training.epochs``)
    unreferenced: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[StrictModel]] = StrictModel
    #: what ``bench tune`` searches: ``--set`` key -> range (:mod:`bench.api.search`); empty:
    #: the method declares none (``bench tune --space FILE`` can still give one)
    search_space: ClassVar[dict[str, Dimension]] = {}

    def check_bits(self, bits: int) -> str | None:
        """Return why ``bits`` is unsupported, or ``None`` when it is fine (default: any K >= 1)."""
        return None if bits >= 1 else "bits must be a positive integer"

    def default_config(self) -> StrictModel:
        return self.Config()

    def resolve(self, config: StrictModel) -> StrictModel:
        """Derive settings that depend on others (e.g. a named variant); identity by default."""
        return config

    def reference_config(self, config: StrictModel) -> StrictModel:
        """The configuration of the reference code a run with ``config`` is compared with: the
        released one (:meth:`released_config`), else the defaults. A method whose options choose
        the reference (a variant, a fine-tuning mode) overrides it."""
        released = self.released_config()
        return self.default_config() if released is None else released

    def deviations(self, config: StrictModel) -> dict[str, str]:
        """The fixed deviations of a run with ``config`` (default: :attr:`fixed_deviations`)."""
        return dict(self.fixed_deviations)

    def own_tags(self, config: StrictModel) -> dict[str, str]:
        """The method's own MLflow tags, without its name (``{"variant": ...}`` is logged as
        ``<name>.variant``); none by default."""
        return {}

    def tags(self, config: StrictModel) -> dict[str, str]:
        """MLflow tags: :meth:`own_tags` and, with a :attr:`reference`, the reference, its published
        budget and every deviation from :meth:`reference_config` (:func:`deviation_tags`)."""
        own = self.own_tags(config)
        if self.reference is not None:
            own = {**self.reference.tags(), **own}
        tags = {f"{self.name}.{key}": value for key, value in own.items()}
        if self.reference is not None:
            reference = self.reference_config(config)
            tags.update(deviation_tags(config, reference, self.deviations(config), ignore=self.unreferenced))
        return tags

    #: Plugin metrics the method's released evaluation code reports (``standard='released'``
    #: asks for them by name and tags any that no plugin registers).
    released_metrics: ClassVar[tuple[str, ...]] = ()

    def released_config(self) -> StrictModel | None:
        """The config as the authors' released code runs it, its own budget included, for
        ``standard='released'``; ``None`` (the default): no released code, the defaults apply."""
        return None


class DeepMethod(Method):
    """A method the harness trains: backbone + head + loss parts from the registries."""

    kind: ClassVar[str] = "deep"
    Config: ClassVar[type[StrictModel]] = DeepMethodConfig

    def reference_config(self, config: StrictModel) -> StrictModel:
        """The released configuration, else the defaults at the published epochs."""
        released, defaults = self.released_config(), self.default_config()
        epochs = self.reference.epochs if self.reference is not None else None
        if released is not None:
            return released
        if epochs is None or not isinstance(defaults, DeepMethodConfig):
            return defaults
        return defaults.model_copy(update={"training": defaults.training.model_copy(update={"epochs": epochs})})


Encoder = Callable[[np.ndarray], np.ndarray]


class Ranking(StrEnum):
    """How a fitted method's outputs rank the gallery: ``HAMMING`` (the sign of its outputs
    is a binary code) or ``COSINE`` (its outputs are real-valued embeddings, ranked by exact
    cosine distance: :mod:`bench.evaluation.real_valued`; a float top line)."""

    HAMMING = "hamming"
    COSINE = "cosine"


class FittedMethod(Method, ABC):
    """A method without gradient training. Subclasses implement :meth:`fit`."""

    kind: ClassVar[str] = "fitted"
    #: what :meth:`fit` and its encoder receive, after the protocol's normalisation:
    #: ``"vectors"`` (N, C*H*W), ``"images"`` (N, C, H, W) (a frozen pretrained backbone it
    #: builds itself) or ``"embeddings"`` (N, D): the features of the registered backbone
    #: :meth:`embedding_backbone` names, computed by the harness once and cached
    #: (:mod:`bench.training.embeddings`)
    inputs: ClassVar[Literal["vectors", "images", "embeddings"]] = "vectors"
    ranking: ClassVar[Ranking] = Ranking.HAMMING

    def embedding_backbone(self, config: StrictModel) -> PartSpec | None:
        """The registered backbone whose features a method with ``inputs = "embeddings"``
        is fitted on (``None`` for other inputs)."""
        return None

    @abstractmethod
    def fit(
        self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: StrictModel
    ) -> Encoder:
        """Fit on training vectors ``x`` (N, D) float32 (images (N, C, H, W) when
        :attr:`inputs` is ``"images"``) with labels ``y``; return an encoder mapping (M, D)
        vectors (or images) to relaxed codes (M, bits) whose sign is the binary code."""
