"""DSH's network (Liu, Wang, Shan, Chen, CVPR 2016; official Caffe code
``lhmRyan/deep-supervised-hashing-DSH``, ``CIFAR-10/train_test.prototxt``) up to FC500.

conv1 32@5x5 pad 2, maxpool 3/2, ReLU, LRN -> conv2 32@5x5 pad 2, avgpool 3/2, ReLU,
LRN -> conv3 64@5x5 pad 2, ReLU, avgpool 3/2 -> FC500, ReLU = feature ``fc`` (500-d).
The prototxt's last layer (``ip1``, FC K, no activation) is the hashing head: use head
``fc`` with ``activation=none, init=caffe-xavier``.

Caffe -> torch, as released: pooling rounds the output size up (``ceil_mode=True``;
Caffe's average pooling divides by the window clipped to the image, as torch does
without padding); LRN is ``WITHIN_CHANNEL`` (torch's ``LocalResponseNorm`` is across
channels) with local_size 3, alpha 5e-5, beta 0.75; kernels use Caffe's ``xavier``
filler ``U(+-sqrt(3 / fan_in))``, biases 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext
from plugins.layers.init import caffe_xavier_


class WithinChannelLRN(nn.Module):
    """Caffe ``LRN`` with ``norm_region: WITHIN_CHANNEL``:
    ``x / (1 + alpha * mean_{size x size window}(x^2)) ** beta`` (zero padded, the window
    mean always divides by size^2, as Caffe's padded average pooling does here).

    >>> lrn = WithinChannelLRN(size=3, alpha=1.0, beta=1.0)
    >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 1, 1] = 3.0
    >>> round(float(lrn(x)[0, 0, 1, 1]), 4)  # 3 / (1 + 9 / 9)
    1.5
    """

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75) -> None:
        super().__init__()
        if size % 2 != 1:
            raise BenchError(f"within-channel LRN needs an odd local_size, got {size}")
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_sq = F.avg_pool2d(x * x, self.size, stride=1, padding=self.size // 2, count_include_pad=True)
        return x / (1.0 + self.alpha * mean_sq).pow(self.beta)


class DSHNet(Backbone):
    """DSH's CIFAR-10 network up to FC500 + ReLU: feature ``fc`` (``hidden``-d, 500)."""

    def __init__(self, ctx: BuildContext, hidden: int = 500) -> None:
        super().__init__()
        channels, height, width = ctx.input_shape
        if min(height, width) < 8:
            raise BenchError(f"backbone 'dsh-net' needs inputs of at least 8x8 (DSH uses 32x32), got {height}x{width}")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 5, padding=2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU(), WithinChannelLRN(),
            nn.Conv2d(32, 32, 5, padding=2), nn.AvgPool2d(3, 2, ceil_mode=True), nn.ReLU(), WithinChannelLRN(),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, height, width)).numel()
        self.fc = nn.Linear(flat, hidden)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                caffe_xavier_(m.weight)
                nn.init.zeros_(m.bias)
        self.feature_dims = {"fc": hidden}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"fc": F.relu(self.fc(self.features(images).flatten(1)))}
