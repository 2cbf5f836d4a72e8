"""DDH's convolutional network (Lin, Li, Tang, IJCAI 2017; official Keras code
``xjcvip007/DDH``, ``build_DDN_net``), up to its merged multi-scale layer.

conv1 20@3x3 valid, BN, ReLU, maxpool 2 -> conv2 40@2x2, BN, ReLU, maxpool 2 -> conv3
60@2x2, BN, ReLU, maxpool 2 = M3 (60x3x3 = 540 at 32x32) -> "conv4" 80@2x2, a
*locally connected* layer (unshared weights), BN, ReLU (80x2x2 = 320). The feature
``merged`` is ``concat(flatten(M3), flatten(conv4))`` (860 at 32x32): DDH's
multi-scale layer. The face-feature layer and divide-and-encode live in the
``divide-encode`` head.

Keras 1 -> torch, as released: conv and locally connected kernels ``he_uniform`` (the
locally connected kernel with Keras 1's fan rule for 3-D kernels, fan = sqrt(prod(shape)),
see :mod:`plugins.layers.init`), zero biases; ``BatchNormalization`` defaults
``epsilon=1e-3, momentum=0.99`` -> ``eps=1e-3, momentum=0.01`` (option ``bn_momentum``:
with few training steps the slow running averages are still far from the batch
statistics when the model is evaluated); ``MaxPooling2D`` valid (floor). Flatten is
channel-major in both (Theano ordering).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext
from plugins.layers.init import BN_EPS, keras1_he_uniform_
from plugins.layers.locally_connected import LocallyConnected2d, conv_output_size

KERAS1_BN_MOMENTUM = 0.01  # Keras 1 BatchNormalization(momentum=0.99) keeps 0.99 of the old mean
MIN_INPUT = 24  # smallest square input whose conv3 block leaves 2x2 for the 2x2 conv4


def ddh_geometry(size: int) -> tuple[int, int]:
    """Spatial size of M3 and of conv4 for a square input of ``size`` pixels.

    >>> ddh_geometry(32)
    (3, 2)
    >>> ddh_geometry(24)
    (2, 1)
    """
    s = conv_output_size(size, 3) // 2
    s = conv_output_size(s, 2) // 2
    m3 = conv_output_size(s, 2) // 2
    return m3, conv_output_size(m3, 2)


class DDHNet(Backbone):
    """DDH's network up to the merged multi-scale layer: feature ``merged`` (860-d at 32x32)."""

    def __init__(self, ctx: BuildContext, bn_momentum: float = KERAS1_BN_MOMENTUM) -> None:
        super().__init__()
        channels, height, width = ctx.input_shape
        if height != width or height < MIN_INPUT:
            raise BenchError(
                f"backbone 'ddh-net' needs square inputs of at least {MIN_INPUT}x{MIN_INPUT} "
                f"(DDH uses 32x32), got {height}x{width}; set --set protocol.input_size=32"
            )
        m3, c4 = ddh_geometry(height)

        def block(cin: int, cout: int, k: int) -> nn.Sequential:
            conv = nn.Conv2d(cin, cout, k)
            keras1_he_uniform_(conv.weight, tuple(conv.weight.shape))
            nn.init.zeros_(conv.bias)
            return nn.Sequential(conv, nn.BatchNorm2d(cout, eps=BN_EPS, momentum=bn_momentum),
                                 nn.ReLU(), nn.MaxPool2d(2))

        self.blocks = nn.Sequential(block(channels, 20, 3), block(20, 40, 2), block(40, 60, 2))
        self.conv4 = LocallyConnected2d(60, 80, (m3, m3), 2)
        # Keras 1's LocallyConnected2D kernel is (positions, patch, filters): fan = sqrt(prod).
        keras1_he_uniform_(self.conv4.weight, tuple(self.conv4.weight.shape))
        nn.init.zeros_(self.conv4.bias)
        self.bn4 = nn.BatchNorm2d(80, eps=BN_EPS, momentum=bn_momentum)
        self.feature_dims = {"merged": 60 * m3 * m3 + 80 * c4 * c4}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        m3 = self.blocks(images)
        c4 = F.relu(self.bn4(self.conv4(m3)))
        return {"merged": torch.cat([m3.flatten(1), c4.flatten(1)], dim=1)}
