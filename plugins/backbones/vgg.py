"""The truncated VGG-16 of DCBH's released TensorFlow code (``main.py``, ``FH_net``).

Four blocks, ten 3x3 convolutions (64x2, 128x2, 256x3, 512x3), each without bias and
followed by BatchNorm and ReLU, a 2x2/2 max-pool after every block. The features are
the global-average-pooled outputs of block 3 (256) and block 4 (512): DCBH's
multi-scale descriptor input. Trained from scratch with Xavier (Glorot uniform) kernels.

Mapping from TensorFlow, where PyTorch forces a choice:
- ``tf.contrib.layers.batch_norm(decay=0.9, epsilon default 1e-3)`` ->
  ``BatchNorm2d(momentum=0.1, eps=1e-3)``. TF's ``zero_debias_moving_mean=True`` has no
  PyTorch counterpart (it only changes the running mean used at evaluation during the
  first steps); PyTorch's running variance is Bessel-corrected.
- ``xavier_initializer()`` (Glorot uniform, fan = k*k*channels) -> ``xavier_uniform_``,
  which computes the same fans for conv kernels.
- ``padding='SAME'`` with stride 1 and a 3x3 kernel -> ``padding=1``.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext
from plugins.layers.init import BN_EPS, BN_MOMENTUM, init_xavier

#: (output channels, number of convolutions) of each block.
BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3))


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3x3 'same' conv without bias, BatchNorm (TF settings), ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    ]


class VGG16Trunc(Backbone):
    """Truncated VGG-16 (DCBH): GAP of block 3 (256) and block 4 (512) as named features."""

    def __init__(self, ctx: BuildContext) -> None:
        super().__init__()
        channels, height, width = ctx.input_shape
        if min(height, width) < 2 ** len(BLOCKS):
            raise BenchError(
                f"backbone 'vgg16-trunc' pools {len(BLOCKS)} times and needs inputs of at least "
                f"{2 ** len(BLOCKS)}px, got {height}x{width}; raise --set protocol.input_size"
            )
        blocks = []
        for out_channels, convs in BLOCKS:
            layers: list[nn.Module] = []
            for _ in range(convs):
                layers += conv_bn_relu(channels, out_channels)
                channels = out_channels
            layers.append(nn.MaxPool2d(2, 2))
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.feature_dims = {"block3": BLOCKS[2][0], "block4": BLOCKS[3][0]}
        init_xavier(self)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images
        features = {}
        for index, block in enumerate(self.blocks, start=1):
            x = block(x)
            if f"block{index}" in self.feature_dims:
                features[f"block{index}"] = x.mean(dim=(2, 3))  # global average pooling
        return features
