"""Softmax classification losses on the model's outputs.

Each classifier is a ``Linear(dim -> C)`` with bias, initialised as the TF/Keras reference
code's dense layers are (Glorot-uniform kernel, zero bias; see :mod:`plugins.layers.init`).
Options: ``bias=False`` drops the bias and ``init="torch"`` keeps PyTorch's default
``nn.Linear`` initialisation (GreedyHash's ``Linear(K, C, bias=False)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, LossPart, StepContext
from plugins.layers.init import init_xavier


class CrossEntropyOn(LossPart):
    """Cross-entropy of a ``Linear(dim -> C)`` classifier applied to one output."""

    def __init__(
        self, ctx: BuildContext, output_dims: dict[str, int], source: str, bias: bool = True, init: str = "xavier"
    ) -> None:
        super().__init__()
        if init not in ("xavier", "torch"):
            raise BenchError(f"loss on '{source}': init '{init}' is unknown; use xavier or torch")
        if source not in output_dims:
            raise BenchError(
                f"loss needs the model output '{source}', but the head gives "
                f"{', '.join(sorted(output_dims))}; choose a head that exposes it"
            )
        self.source = source
        layer = nn.Linear(output_dims[source], ctx.num_classes, bias=bias)
        self.classifier = init_xavier(layer) if init == "xavier" else layer

    def forward(self, outputs: dict[str, torch.Tensor], context: StepContext) -> torch.Tensor:
        return F.cross_entropy(self.classifier(outputs[self.source].float()), context.labels)


class CodeCrossEntropy(CrossEntropyOn):
    """Softmax classification of identities from the relaxed code ``u`` (Linear(K -> C))."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int], bias: bool = True, init: str = "xavier") -> None:
        super().__init__(ctx, output_dims, "u", bias=bias, init=init)


class DescriptorCrossEntropy(CrossEntropyOn):
    """Softmax classification of identities from the descriptor ``f`` (Linear(c*K -> C), DCBH)."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int]) -> None:
        super().__init__(ctx, output_dims, "f")
