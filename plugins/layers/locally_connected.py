"""A 2-D locally connected layer: a convolution whose weights are not shared across
positions (Keras' ``LocallyConnected2D``; torch has none). Implemented with ``unfold``.

Each output position ``(i, j)`` has its own kernel ``(out, in, kh, kw)`` and its own bias
per output channel. The input size must be known when the layer is built.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.api.errors import BenchError


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial output size of a convolution or pooling window (floor mode).

    >>> conv_output_size(3, 2), conv_output_size(32, 5, 1, 2), conv_output_size(7, 3, 2)
    (2, 32, 3)
    """
    return (size + 2 * padding - kernel) // stride + 1


class LocallyConnected2d(nn.Module):
    """``out[n, o, i, j] = bias[o, i, j] + sum_{c, a, b} weight[i, j, c, a, b, o] *
    x[n, c, i*s + a, j*s + b]`` (after zero padding).

    ``weight`` is stored as ``(positions, in * kh * kw, out)``, Keras' layout, with the
    patch index in ``unfold``'s order (channel, row, column). Default init: the
    ``Conv2d`` rule (Kaiming-uniform with a = sqrt(5), fan-in = in * kh * kw).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_size: tuple[int, int],
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        oh = conv_output_size(input_size[0], kh, stride, padding)
        ow = conv_output_size(input_size[1], kw, stride, padding)
        if oh < 1 or ow < 1:
            raise BenchError(
                f"locally connected layer: a {kh}x{kw} kernel does not fit a "
                f"{input_size[0]}x{input_size[1]} input; use a larger input size"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.input_size, self.output_size = tuple(input_size), (oh, ow)
        patch = in_channels * kh * kw
        self.weight = nn.Parameter(torch.empty(oh * ow, patch, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels, oh, ow)) if bias else None
        bound = 1.0 / math.sqrt(patch)  # Conv2d's default: kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def kernel_parameters(self) -> list[nn.Parameter]:
        """The kernel weight decay applies to (see :func:`bench.training.assembly.kernel_parameters`)."""
        return [self.weight]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != self.input_size:
            raise BenchError(
                f"locally connected layer built for {self.input_size} inputs got {tuple(x.shape[2:])}"
            )
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (N, P, L)
        out = torch.einsum("npl,lpo->nol", patches, self.weight)
        out = out.reshape(x.shape[0], self.out_channels, *self.output_size)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
