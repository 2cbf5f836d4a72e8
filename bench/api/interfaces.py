"""What plugin parts look like: backbones, hashing heads and loss parts, and what they are
told when they are built (:class:`BuildContext`) and at every training step
(:class:`StepContext`).

A deep model is ``backbone -> head``; loss parts read the model's outputs. Plugin authors
subclass these base classes and register their factories through the hooks in
:mod:`bench.api.hookspecs`; :mod:`bench.api.contract` states each factory's signature and
checks a built part against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

Outputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BuildContext:
    """What a factory may need to know to build a part for one run.

    ``train_size`` is the number of training samples (the range of
    :attr:`StepContext.indices`), for parts that keep a value per sample; 0 when a part is
    built outside a run.
    """

    bits: int
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    seed: int = 0
    train_size: int = 0


@dataclass(frozen=True)
class StepContext:
    """What a loss part knows about the training step it is computed in.

    - ``labels``: ``(N,)`` int64 identities of the batch;
    - ``indices``: ``(N,)`` int64 positions of the batch's samples in the training set
      (``0 <= i < BuildContext.train_size``, the order of the training split), so a part
      can keep a memory of every training sample (DPSH);
    - ``epoch``: 0-dim int64 tensor, the epoch the step belongs to, counted from 1;
    - ``step``: 0-dim int64 tensor, the steps taken before this one in the run (0 at the
      first), for schedules (HashNet's growing tanh scale: ``step / total_steps``);
    - ``total_steps``: the run's step budget, a plain int (it never changes during a run).

    Every tensor is on the training device. On CUDA they are the static buffers of the
    captured step, refilled before each replay: compute with them as tensors and never turn
    them into Python numbers (``int(context.epoch)`` reads back to the host, and a graph
    would replay the number it saw at capture).
    """

    labels: torch.Tensor
    indices: torch.Tensor
    epoch: torch.Tensor
    step: torch.Tensor
    total_steps: int

    @classmethod
    def of(cls, labels: torch.Tensor) -> StepContext:
        """A context for ``labels`` alone: the first step of a one-step run over training
        samples ``0..N-1`` (to call a loss part outside the training loop).

        >>> StepContext.of(torch.tensor([3, 1])).indices.tolist()
        [0, 1]
        """
        device = labels.device
        return cls(labels, torch.arange(len(labels), device=device),
                   torch.ones((), dtype=torch.int64, device=device),
                   torch.zeros((), dtype=torch.int64, device=device), total_steps=1)


class Backbone(nn.Module):
    """Maps images ``(N, C, H, W)`` to named features ``{name: (N, d)}``.

    Subclasses set :attr:`feature_dims` (``{name: d}``, not empty) in ``__init__``, after
    ``super().__init__()``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.feature_dims: dict[str, int] = {}


@dataclass(frozen=True)
class BackboneInputs:
    """What a pretrained network reads where it differs from the protocol's images: dataset
    options (e.g. a face alignment: ``{"align": "dlib"}``), the input size and the
    normaliser (a registered name). ``None`` / empty: the protocol's."""

    dataset_options: tuple[tuple[str, Any], ...] = ()
    input_size: int | None = None
    normalisation: str | None = None


class PretrainedBackbone(Backbone):
    """A backbone whose weights come pretrained (a face-recognition network). ``bench run
    --backbone NAME`` runs every deep method on it frozen by default (its features computed
    once and cached; only the head and the loss train) or, with ``--backbone-mode
    fine-tune``, trained at a reduced learning rate; see :class:`bench.config.protocol.PretrainedSpec`.
    Registered as the class or by a factory annotated to return one.

    :attr:`expects` says what it reads: the harness loads the same dataset, split and
    identities with those settings for it (:mod:`bench.running.views`), so its runs are
    evaluated on the same queries and gallery as every other run of the protocol.
    """

    expects: ClassVar[BackboneInputs] = BackboneInputs()
    #: Datasets (as registered here) whose images were part of the network's training data:
    #: a run on one of them is tagged ``facehash.pretrained.trained_on`` and the leaderboard
    #: says that its scores are not measured on unseen faces.
    trained_on: ClassVar[tuple[str, ...]] = ()


class HashHead(nn.Module):
    """Maps named features to a relaxed code ``u`` in R^K and possibly other outputs.

    ``forward`` returns a dict with at least ``"u"`` of shape ``(N, K)``; other entries
    (for example the descriptor ``"f"``) are exposed to losses. Subclasses set
    :attr:`output_dims`, every output's width (``"u"``: K, the run's bits), in
    ``__init__``, after ``super().__init__()``. The binary code is ``sign(u)`` with
    sign(0) = +1; a head that binarises itself (GreedyHash) returns its codes as ``u``, with
    a straight-through gradient (:mod:`plugins.heads.straight_through`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.output_dims: dict[str, int] = {}


class LossPart(nn.Module):
    """One named term of a loss: ``forward(outputs, context)`` returns a scalar tensor,
    from the model's ``outputs`` and the step's :class:`StepContext` (labels, sample
    indices, epoch, step).

    A part may own parameters (classifier weights, centres: trained with the model, by the
    same optimizer) and buffers (``register_buffer``: a memory of codes, a fixed codebook;
    never optimised). Both are saved with the selected checkpoint and the resume
    checkpoint. :meth:`after_step` runs after each optimizer step, for non-gradient
    updates (the centre-loss rule).

    On CUDA the whole step is replayed from a CUDA graph (:mod:`bench.training.step`), so
    a part must not read values back to the host (``.item()``, ``int(context.epoch)``,
    boolean-mask indexing) and must update what it keeps across steps in place
    (``buffer.index_copy_(0, context.indices, codes)``, not ``self.buffer = ...``). The
    context's tensors are static buffers the harness refills before every replay, so a
    part that computes with them as tensors sees each step's values. A part that cannot
    be captured still trains, eagerly, and the run's ``facehash.accel.step`` tag says so.
    """

    def after_step(self, outputs: Outputs, context: StepContext) -> None:
        """Non-gradient update after the optimizer step; nothing by default."""


@runtime_checkable
class DeclaresKernels(Protocol):
    """A layer whose kernels are not the ``weight`` of a ``Conv``/``Linear`` module (a
    block-diagonal or locally connected layer) names them, so that weight decay with
    ``decay_scope=kernels`` applies to them (:func:`bench.training.assembly.kernel_parameters`)."""

    def kernel_parameters(self) -> Iterable[nn.Parameter]:
        """The layer's kernels."""
        ...
