"""``dlib-resnet``: the reader of dlib's serialisation format and the PyTorch network,
checked against dlib's own descriptors (``face_recognition_model_v1``) on ORL chips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext
from bench.api.pluginhost import load_plugins
from plugins.backbones.dlib_format import DlibFormatError, Stream, read_file
from plugins.backbones.dlib_resnet import (
    DESCRIPTOR,
    DlibResNet,
    build_dlib_resnet,
    dlib_input,
    embed_chips,
    layer_stack,
    read_weights,
    weights_path,
)
from plugins.datasets.face_align import DlibAligner, as_rgb
from plugins.datasets.orl import orl_root, read_pgm, repair_pgm

dlib = pytest.importorskip("dlib")
CTX = BuildContext(bits=16, num_classes=2, input_shape=(3, 150, 150))
#: s1/2.pgm has no detected face (the whole-image fallback); the others are detected.
ORL_FILES = ("s1/1.pgm", "s1/2.pgm", "s7/3.pgm", "s20/5.pgm", "s33/1.pgm")


@pytest.fixture(scope="module")
def originals() -> list[np.ndarray]:
    root = orl_root()
    return [as_rgb(read_pgm(repair_pgm((root / name).read_bytes()))) for name in ORL_FILES]


@pytest.fixture(scope="module")
def model() -> DlibResNet:
    return build_dlib_resnet(CTX).eval()


def test_stream_primitives_decode_hand_made_bytes() -> None:
    s = Stream(b"\x01\x05" b"\x82\x00\x01" b"\x01\x03\x81\x01" b"\x01\x01\x02\x00\x7d" b"1" b"\x01\x03abc", "t")
    assert s.integer() == 5
    assert s.integer() == -256  # 0x82: negative, two magnitude bytes 0x0100
    assert s.real() == 1.5  # mantissa 3, exponent -1
    assert s.real() == math.inf  # exponent 32000 (0x7d00) stands for +inf
    assert s.boolean() is True
    assert s.string() == "abc"
    assert s.pos == len(s.data)


def test_reader_finds_the_published_architecture() -> None:
    net = read_weights(str(weights_path()))
    assert net.image_size == (150, 150)
    assert [round(m, 3) for m in net.means] == [122.782, 117.001, 104.298]
    convs = [layer.tensors["weight"].shape for layer in net.layers if layer.token.kind == "con"]
    assert len(convs) == 29  # "a ResNet of 29 convolutional layers"
    assert convs[0] == (32, 3, 7, 7) and convs[-1] == (256, 256, 3, 3)
    assert sum(layer.token.kind == "affine" for layer in net.layers) == 29
    assert net.layers[-1].tensors["weight"].shape == (128, 256)
    params = sum(int(np.prod(t.shape)) for layer in net.layers for t in layer.tensors.values())
    assert 5_500_000 < params < 5_700_000  # 22.4 MB of float32 in a 22,466,066-byte file


def test_a_truncated_file_gives_one_clear_error(tmp_path: Path) -> None:
    data = weights_path().read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match="truncated"):
        read_file(cut, layer_stack())
    other = tmp_path / "other.dat"
    other.write_bytes(data[:2] + b"\x01\x05hello" + data[17:])  # another loss name in place of loss_metric_2
    with pytest.raises(DlibFormatError, match="'hello'"):
        read_file(other, layer_stack())
    extra = tmp_path / "extra.dat"
    extra.write_bytes(data + b"\x00")
    with pytest.raises(DlibFormatError, match="1 bytes left over"):
        read_file(extra, layer_stack())


def test_descriptors_equal_dlibs_own(model: DlibResNet, originals: list[np.ndarray]) -> None:
    aligner = DlibAligner()
    chips = np.stack([aligner.chip(image)[0] for image in originals])  # (N, 150, 150, 3)
    reference = dlib.face_recognition_model_v1(str(weights_path()))
    expected = np.array([np.array(reference.compute_face_descriptor(chip)) for chip in chips])
    ours = embed_chips(model, chips.transpose(0, 3, 1, 2), batch_size=2)
    assert np.abs(ours - expected).max() < 1e-4  # measured: 2.8e-7 (float32 summation order)
    assert np.abs(expected).max() > 0.1  # guard: the descriptors are not all near zero
    random = embed_chips(DlibResNet().eval(), chips.transpose(0, 3, 1, 2))
    assert np.abs(random - expected).max() > 1e-2  # guard: the comparison can fail


def test_descriptor_from_an_image_and_its_landmarks_equals_dlibs(model: DlibResNet, originals) -> None:
    aligner = DlibAligner()
    image = originals[0]
    shape = aligner.landmarks(image, aligner.detector(image, 1)[0])
    reference = dlib.face_recognition_model_v1(str(weights_path()))
    expected = np.array(reference.compute_face_descriptor(image, shape))  # dlib crops the chip itself
    ours = embed_chips(model, aligner.chip(image)[0].transpose(2, 0, 1)[None])[0]
    assert np.abs(ours - expected).max() < 1e-4


def test_registered_backbone_refuses_small_crops_and_fine_tunes() -> None:
    host = load_plugins()
    with pytest.raises(BenchError, match="needs 150x150 RGB face chips"):
        host.backbones.build("dlib-resnet", BuildContext(bits=16, num_classes=2, input_shape=(3, 32, 32)))
    net = host.backbones.build("dlib-resnet", CTX, pretrained=False)
    assert net.feature_dims == {DESCRIPTOR: 128}
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "fc.weight" in trainable and "conv1.weight" in trainable
    assert not any("affine" in n for n in trainable)  # folded batch norm: fixed buffers
    x = dlib_input(torch.randint(0, 256, (2, 3, 150, 150), dtype=torch.uint8))
    net(x)[DESCRIPTOR].pow(2).sum().backward()
    assert net.conv1.weight.grad is not None and net.conv1.weight.grad.abs().sum() > 0


def test_bf16_autocast_stays_close(model: DlibResNet, originals) -> None:
    chips = np.stack([DlibAligner().chip(image)[0] for image in originals[:2]]).transpose(0, 3, 1, 2)
    x = dlib_input(torch.from_numpy(chips))
    with torch.no_grad():
        full = model(x)[DESCRIPTOR]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(x)[DESCRIPTOR].float()
    assert torch.nn.functional.cosine_similarity(full, half).min() > 0.99


def test_speed_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "dlib_resnet_speed.py"
    spec = importlib.util.spec_from_file_location("dlib_resnet_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--smoke"])
    out = capsys.readouterr().out
    bound = float(out.split("max |ours - dlib| = ")[1].split()[0])
    assert bound < 1e-4 and "images/s" in out
