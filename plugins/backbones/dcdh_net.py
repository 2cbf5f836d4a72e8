"""DCDH's network (Zhang et al., Deep Center-Based Dual-Constrained Hashing, Pattern
Recognition 2021; official code ``mzhang367/DCDH-PyTorch``, ``model.py`` ``DFHNet``) up to
its 1024-d face feature; the hash layer (``Linear(1024, K)`` + ``BatchNorm1d``) is the head
``bn-hash`` with ``init=xavier-normal``.

As released, for 3x32x32 inputs:

- attention mask (residual branch): three stride-2 2x2 convs 32/64/128 + BN + ReLU
  (32 -> 16 -> 8 -> 4), a 1x1 conv 128 + BN + ReLU, then transposed 3x3 stride-2 convs
  with ReLU back up, each of the first two added to the encoder map of its size and
  batch-normalised (8, 16), the third (16 channels, 32x32) through a 1x1 conv to 3
  channels and a sigmoid. The released ``bn3`` is defined but never used (left out).
- trunk: 3x3 convs 32/64/128 (pad 1) + BN + ReLU, a 1x1 conv to 3 channels + BN + ReLU;
  the mixed input is ``trunk + mask * trunk``.
- conv block: conv 32@3 + BN + ReLU + maxpool 2 -> conv 64@2 ... -> conv 128@2 ... ->
  ``conv3`` (3x3x128); ``conv4`` 256@2 + BN + ReLU (2x2x256); fusion = concat of both
  flattened (2176) -> Linear 1024 + BN + ReLU = feature ``face``.
- init (``weights_init``): Glorot-normal conv, transposed-conv and linear kernels, zero
  biases; BatchNorm at torch's defaults.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext

FACE_FEATURES = 1024


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    """``Conv2d -> BatchNorm2d -> ReLU``, DCDH's building block."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout), nn.ReLU(True))


def up(cin: int, cout: int) -> nn.Sequential:
    """Transposed 3x3 stride-2 conv doubling the size, then ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, 2, padding=1, output_padding=1), nn.ReLU(True))


class DCDHNet(Backbone):
    """DCDH's attention network up to the 1024-d face feature (``face``)."""

    def __init__(self, ctx: BuildContext) -> None:
        super().__init__()
        channels, height, width = ctx.input_shape
        if height % 8 or width % 8 or min(height, width) < 24:
            raise BenchError(f"backbone 'dcdh-net' needs sides divisible by 8 and at least 24 "
                             f"(DCDH uses 32x32), got {height}x{width}; set --set protocol.input_size=32")
        self.encode = nn.ModuleList([conv_bn_relu(channels, 32, 2, 2), conv_bn_relu(32, 64, 2, 2),
                                     conv_bn_relu(64, 128, 2, 2)])
        self.bottleneck = conv_bn_relu(128, 128, 1)
        self.decode = nn.ModuleList([up(128, 64), up(64, 32), up(32, 16)])
        self.skip_norms = nn.ModuleList([nn.BatchNorm2d(64), nn.BatchNorm2d(32)])
        self.mask_out = nn.Conv2d(16, channels, 1)
        self.trunk = nn.Sequential(conv_bn_relu(channels, 32, 3, 1, 1), conv_bn_relu(32, 64, 3, 1, 1),
                                   conv_bn_relu(64, 128, 3, 1, 1), conv_bn_relu(128, channels, 1))
        self.conv3 = nn.Sequential(conv_bn_relu(channels, 32, 3), nn.MaxPool2d(2, 2), conv_bn_relu(32, 64, 2),
                                   nn.MaxPool2d(2, 2), conv_bn_relu(64, 128, 2), nn.MaxPool2d(2, 2))
        self.conv4 = conv_bn_relu(128, 256, 2)
        with torch.no_grad():
            c3 = self.conv3(torch.zeros(2, channels, height, width))
            fused = c3[0].numel() + self.conv4(c3)[0].numel()  # 2176 at 32x32
        self.face = nn.Sequential(nn.Linear(fused, FACE_FEATURES), nn.BatchNorm1d(FACE_FEATURES), nn.ReLU(True))
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        self.feature_dims = {"face": FACE_FEATURES}

    def attention_mask(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch's sigmoid mask, the input's size and channels."""
        skips = []
        for layer in self.encode:
            x = layer(x)
            skips.append(x)
        x = self.bottleneck(x)
        for layer, norm, skip in zip(self.decode[:2], self.skip_norms, reversed(skips[:2]), strict=True):
            x = norm(layer(x) + skip)
        return torch.sigmoid(self.mask_out(self.decode[2](x)))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        trunk = self.trunk(images)
        mixed = trunk + self.attention_mask(images) * trunk
        c3 = self.conv3(mixed)
        c4 = self.conv4(c3)
        return {"face": self.face(torch.cat([c3.flatten(1), c4.flatten(1)], dim=1))}
