"""What plugin parts look like: backbones, hashing heads and loss parts.

A deep model is ``backbone -> head``; loss parts read the model's outputs. Plugin
authors subclass these (or duck-type them) and register factories through the hooks in
:mod:`bench.api.hookspecs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

Outputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BuildContext:
    """What a factory may need to know to build a part for one run."""

    bits: int
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    seed: int = 0


class Backbone(nn.Module):
    """Maps images ``(N, C, H, W)`` to named features ``{name: (N, d)}``.

    Subclasses set :attr:`feature_dims` (``{name: d}``) in ``__init__``.
    """

    feature_dims: dict[str, int]


class HashHead(nn.Module):
    """Maps named features to a relaxed code ``u`` in R^K and possibly other outputs.

    ``forward`` returns a dict with at least ``"u"`` of shape ``(N, K)``; other entries
    (for example the descriptor ``"f"``) are exposed to losses. :attr:`output_dims`
    names every output and its width.
    """

    bits: int
    output_dims: dict[str, int]

    @staticmethod
    def binarize(u: torch.Tensor) -> torch.Tensor:
        """The binary code: ``sign(u)`` in {-1, +1} with sign(0) = +1, as int8."""
        return binarize(u)


class LossPart(nn.Module):
    """One named term of a loss. ``forward(outputs, labels)`` returns a scalar tensor.

    A part may own parameters (classifier weights, centres): they are trained with the
    model. A part may define ``after_step(outputs, labels)``, called after each optimizer
    step (for non-gradient updates such as the centre-loss rule).

    On CUDA the whole step is replayed from a CUDA graph (:mod:`bench.training.step`), so
    a part should not read values back to the host (``.item()``, boolean-mask indexing)
    and must update tensors it keeps across steps in place; a part that cannot be captured
    still trains, eagerly, and the run's ``facehash.accel.step`` tag says so.
    """

    def after_step(self, outputs: Outputs, labels: torch.Tensor) -> None:
        """Non-gradient update after the optimizer step; nothing by default."""


def binarize(u: torch.Tensor) -> torch.Tensor:
    """Sign with sign(0) = +1, as int8.

    >>> binarize(torch.tensor([-0.5, 0.0, 2.0])).tolist()
    [-1, 1, 1]
    """
    return torch.where(u >= 0, 1, -1).to(torch.int8)
