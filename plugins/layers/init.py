"""Weight initialisers and normalisation-layer defaults that reproduce the reference
frameworks (TensorFlow 1 / Keras, Keras 1, Caffe) in torch, shared by the parts that port
released code (DCBH, DDH, DSH), and the named schemes of the PyTorch references' hash
layers (:func:`init_linear`: DCDH's ``xavier_normal_``, DeepHash-pytorch's and
OrthoHash's ``normal_(0, 0.01)``).

- ``batch_norm(decay=0.9)`` -> ``momentum=0.1``; ``tf.contrib.layers.batch_norm``'s
  default ``epsilon=1e-3`` (Keras' BatchNormalization also uses 1e-3).
- ``xavier_initializer()`` / Keras ``glorot_uniform`` kernels and zero biases ->
  :func:`init_xavier` (PyTorch computes the same fans for conv and dense kernels; its own
  default init differs).
- Keras 1 ``he_uniform`` and Caffe's ``xavier`` filler: each returns the bound of a uniform
  distribution ``U(-bound, bound)`` and fills in place. Fan rules follow the frameworks
  exactly, including Keras 1's rule for kernels that are neither 2-D nor 4-D/5-D
  (``fan = sqrt(prod(shape))``), which applies to its ``LocallyConnected2D`` kernel of
  shape ``(positions, patch, filters)``.
"""

from __future__ import annotations

import math

import torch
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


def uniform_(tensor: torch.Tensor, bound: float) -> float:
    """Fill ``tensor`` from ``U(-bound, bound)`` without tracking gradients; return ``bound``."""
    with torch.no_grad():
        tensor.uniform_(-bound, bound)
    return bound


def keras1_fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Keras 1 ``get_fans`` for Theano ('th') dimension ordering.

    >>> keras1_fans((860, 192))                 # Dense kernel (in, out)
    (860, 192)
    >>> keras1_fans((20, 3, 3, 3))              # conv kernel (out, in, kh, kw)
    (27, 180)
    >>> keras1_fans((4, 240, 80))               # LocallyConnected2D kernel: no assumption
    (277.128..., 277.128...)
    """
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) in (4, 5):
        field = math.prod(shape[2:])
        return shape[1] * field, shape[0] * field
    fan = math.sqrt(math.prod(shape))
    return fan, fan


def keras1_he_uniform_(tensor: torch.Tensor, keras_shape: tuple[int, ...]) -> float:
    """Keras 1 ``he_uniform``: ``U(-sqrt(6 / fan_in), +)`` with fans of ``keras_shape``."""
    fan_in, _ = keras1_fans(keras_shape)
    return uniform_(tensor, math.sqrt(6.0 / fan_in))


def caffe_xavier_(tensor: torch.Tensor) -> float:
    """Caffe's ``xavier`` filler (default ``variance_norm: FAN_IN``): ``U(-sqrt(3 / fan_in), +)``,
    where ``fan_in = count / num_output`` (torch weights are ``(out, in, ...)``).

    >>> w = torch.empty(32, 3, 5, 5)
    >>> round(caffe_xavier_(w), 4), bool(w.abs().max() <= 0.2)
    (0.2, True)
    """
    fan_in = tensor.numel() // tensor.shape[0]
    return uniform_(tensor, math.sqrt(3.0 / fan_in))


#: Hash-layer initialisations by name: ``torch`` (nn.Linear's own), ``xavier-normal``
#: (DCDH's ``weights_init``: Glorot-normal kernel, zero bias), ``normal-0.01`` (N(0, 0.01^2)
#: kernel, zero bias: DeepHash-pytorch's ResNet hash layer, OrthoHash's ``hash_fc``),
#: ``caffe-xavier`` (:func:`caffe_xavier_`, zero bias).
LINEAR_INITS = ("torch", "xavier-normal", "normal-0.01", "caffe-xavier")


def init_linear(layer: nn.Linear, scheme: str) -> nn.Linear:
    """Initialise ``layer`` by one of :data:`LINEAR_INITS` (biases, where present, to 0
    except under ``torch``).

    >>> layer = init_linear(nn.Linear(1000, 4), "normal-0.01")
    >>> round(float(layer.weight.std()), 2), float(layer.bias.abs().sum())
    (0.01, 0.0)
    """
    if scheme == "torch":
        return layer
    with torch.no_grad():
        if scheme == "xavier-normal":
            nn.init.xavier_normal_(layer.weight)
        elif scheme == "normal-0.01":
            layer.weight.normal_(0.0, 0.01)
        elif scheme == "caffe-xavier":
            caffe_xavier_(layer.weight)
        else:
            raise ValueError(f"unknown initialisation '{scheme}'; use one of {', '.join(LINEAR_INITS)}")
        if layer.bias is not None:
            layer.bias.zero_()
    return layer
