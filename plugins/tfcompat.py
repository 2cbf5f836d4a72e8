"""TensorFlow 1 / Keras layer defaults mapped to PyTorch, shared by the parts that port
the released TF/Keras reference code (DCBH, DDH).

- ``batch_norm(decay=0.9)`` -> ``momentum=0.1``; ``tf.contrib.layers.batch_norm``'s
  default ``epsilon=1e-3`` (Keras' BatchNormalization also uses 1e-3).
- ``xavier_initializer()`` / Keras ``glorot_uniform`` kernels and zero biases ->
  ``xavier_uniform_`` + ``zeros_`` (PyTorch computes the same fans for conv and dense
  kernels; its own default init differs).
"""

from __future__ import annotations

from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.1


def init_xavier(module: nn.Module) -> nn.Module:
    """Glorot-uniform kernels and zero biases for every conv/linear layer of ``module``.

    >>> layer = init_xavier(nn.Linear(4, 2))
    >>> bool(layer.bias.abs().sum() == 0), bool(layer.weight.abs().max() <= (6 / 6) ** 0.5)
    (True, True)
    """
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
