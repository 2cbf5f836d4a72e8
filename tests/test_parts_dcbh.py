"""The reusable parts DCBH is built from: vgg16-trunc, timm:<name>, the block head,
the center / ce_descriptor / ce_code / quantization losses. Numbers are checked against
counts from the reference architecture and hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, StepContext
from bench.api.pluginhost import load_plugins
from plugins.backbones.vgg import BLOCKS, VGG16Trunc
from plugins.heads.block import BlockHead, block_bit_range, block_softmax_bits
from plugins.losses.center import CenterLoss, center_rule_delta
from plugins.losses.classification import CodeCrossEntropy, DescriptorCrossEntropy
from plugins.losses.quantization import QuantizationLoss

FEATS = {"block3": 256, "block4": 512}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def host():
    return load_plugins()


# ---- vgg16-trunc -----------------------------------------------------------------------

def test_vgg_conv_parameters_match_the_reference():
    net = VGG16Trunc(BuildContext(48, 530, (3, 32, 32)))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and all(c.bias is None for c in convs)
    # 3x3 kernels, channel plan 3-64-64 | 128 128 | 256 x3 | 512 x3, counted by hand
    plan = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    expected = sum(9 * a * b for a, b in zip(plan[:-1], plan[1:], strict=True))
    assert expected == 7_632_576  # "about 7.63M"
    assert sum(c.weight.numel() for c in convs) == expected
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 10 and all(b.eps == 1e-3 and b.momentum == 0.1 for b in bns)
    assert count(net) == expected + 2 * sum(plan[1:])


def test_vgg_features_and_xavier_init():
    torch.manual_seed(0)
    net = VGG16Trunc(BuildContext(12, 5, (3, 32, 32)))
    assert net.feature_dims == FEATS == {f"block{i}": BLOCKS[i - 1][0] for i in (3, 4)}
    out = net(torch.randn(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"block3": (2, 256), "block4": (2, 512)}
    conv = net.blocks[3][0]  # 256 -> 512
    limit = math.sqrt(6 / (9 * 256 + 9 * 512))  # Glorot uniform
    w = conv.weight.detach()
    assert float(w.abs().max()) <= limit
    assert abs(float(w.std()) - limit / math.sqrt(3)) < 0.02 * limit


def test_vgg_gap_is_the_mean_of_the_block_output():
    net = VGG16Trunc(BuildContext(12, 5, (3, 16, 16))).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        maps = net.blocks[2](net.blocks[1](net.blocks[0](x)))
        assert torch.allclose(net(x)["block3"], maps.mean(dim=(2, 3)))


def test_vgg_rejects_inputs_too_small_to_pool_four_times():
    with pytest.raises(BenchError, match="at least 16px"):
        VGG16Trunc(BuildContext(12, 5, (3, 8, 8)))


# ---- block head --------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [12, 24, 36, 48])
def test_block_head_shapes(bits):
    head = BlockHead(BuildContext(bits, 7, (3, 32, 32)), FEATS)
    out = head({"block3": torch.randn(5, 256), "block4": torch.randn(5, 512)})
    assert out["u"].shape == (5, bits) and out["f"].shape == (5, 6 * bits)
    assert head.output_dims == {"u": bits, "f": 6 * bits}


def test_block_layer_has_no_parameters_and_the_linear_variant_has_336():
    ctx = BuildContext(48, 530, (3, 32, 32))
    plain = BlockHead(ctx, FEATS)
    descriptor = 768 * 288 + 288 + 2 * 288  # Linear(768 -> 288) + BN(288)
    assert count(plain) == descriptor  # the block layer adds nothing
    linear = BlockHead(ctx, FEATS, block_linear=True)
    assert count(linear) - descriptor == 336 == 48 * (6 + 1)
    fc_equivalent = 288 * 48 + 48
    assert fc_equivalent == 13_872


def test_block_bits_match_a_brute_force_loop_and_stay_in_range():
    torch.manual_seed(1)
    f = torch.relu(torch.randn(4, 3 * 6) * 5)
    u = block_softmax_bits(f, 3)
    for n in range(4):
        for k in range(3):
            block = f[n, 6 * k : 6 * k + 6].tolist()
            z = sum(math.exp(v) for v in block)
            expected = math.tanh(max(math.exp(v) / z for v in block) - 0.5)
            assert abs(float(u[n, k]) - expected) < 1e-6
    low, high = block_bit_range(6)
    extremes = torch.tensor([[0.0] * 6 + [1000.0] + [0.0] * 5])  # uniform block, one-hot block
    v = block_softmax_bits(extremes, 2)[0]
    assert abs(float(v[0]) - low) < 1e-6 and abs(float(v[1]) - high) < 1e-6
    head = BlockHead(BuildContext(12, 3, (3, 32, 32)), FEATS)
    u = head({"block3": torch.randn(64, 256) * 10, "block4": torch.randn(64, 512) * 10})["u"].detach()
    assert float(u.min()) >= low - 1e-6 and float(u.max()) <= high + 1e-6


def test_block_linear_variant_is_block_diagonal():
    head = BlockHead(BuildContext(4, 3, (3, 32, 32)), FEATS, c=3, block_linear=True)
    f = torch.randn(2, 12)
    expected = torch.stack(
        [f[:, 3 * k : 3 * k + 3] @ head.block.weight[k] + head.block.bias[k] for k in range(4)], 1
    )
    assert torch.allclose(head.block(f), expected, atol=1e-6)
    assert float(head.block.weight.abs().max()) <= math.sqrt(6 / 4)


def test_block_head_rejects_blocks_of_one():
    with pytest.raises(BenchError, match="c >= 2"):
        BlockHead(BuildContext(4, 3, (3, 32, 32)), FEATS, c=1)


# ---- losses ------------------------------------------------------------------------------

def test_center_rule_on_a_hand_computed_three_sample_example():
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    f = torch.tensor([[2.0, 0.0], [4.0, 6.0], [3.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # class 0: n = 2, c0 <- c0 - ((c0 - f0) + (c0 - f1)) / 3 = (0,0) + (6,6)/3 = (2, 2)
    # class 1: n = 1, c1 <- c1 - (c1 - f2) / 2 = (1,1) - (-2, 0)/2 = (2, 1); class 2 untouched
    new = centers + center_rule_delta(centers, f, labels)
    assert new.tolist() == [[2.0, 2.0], [2.0, 1.0], [5.0, 5.0]]


def test_center_loss_value_sum_and_mean():
    ctx = BuildContext(2, 3, (3, 32, 32))
    part = CenterLoss(ctx, {"f": 2})
    with torch.no_grad():
        part.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    outputs = {"f": torch.tensor([[2.0, 0.0], [4.0, 6.0], [3.0, 1.0]])}
    labels = torch.tensor([0, 0, 1])
    # 0.5 * (4 + 52 + 4) = 30
    assert float(part(outputs, StepContext.of(labels))) == 30.0
    mean = CenterLoss(ctx, {"f": 2}, reduction="mean")
    mean.load_state_dict(part.state_dict())
    assert float(mean(outputs, StepContext.of(labels))) == 10.0


def test_center_rule_adds_to_the_optimizer_step_as_in_tf():
    ctx = BuildContext(2, 3, (3, 32, 32))
    part = CenterLoss(ctx, {"f": 2})
    start = part.centers.detach().clone()
    f = torch.tensor([[2.0, 0.0], [4.0, 6.0], [3.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    opt = torch.optim.SGD(part.parameters(), lr=0.1)
    loss = part({"f": f}, StepContext.of(labels))
    loss.backward()
    grad = part.centers.grad.clone()  # d/dc of sum 0.5||f - c||^2 = n_j c_j - sum f_i
    opt.step()
    part.after_step({"f": f}, StepContext.of(labels))
    expected = start - 0.1 * grad + center_rule_delta(start, f, labels)
    assert torch.allclose(part.centers.detach(), expected, atol=1e-6)
    frozen = CenterLoss(ctx, {"f": 2}, update=False, trainable=False)
    before = frozen.centers.detach().clone()
    frozen({"f": f}, StepContext.of(labels))
    frozen.after_step({"f": f}, StepContext.of(labels))
    assert torch.equal(frozen.centers, before) and not frozen.centers.requires_grad


def test_center_loss_errors_name_the_fix():
    ctx = BuildContext(2, 3, (3, 32, 32))
    with pytest.raises(BenchError, match="exposes it"):
        CenterLoss(ctx, {"u": 2})
    with pytest.raises(BenchError, match="sum or mean"):
        CenterLoss(ctx, {"f": 2}, reduction="avg")


def test_classification_parts_read_their_outputs():
    ctx = BuildContext(48, 530, (3, 32, 32))
    dims = {"u": 48, "f": 288}
    code, desc = CodeCrossEntropy(ctx, dims), DescriptorCrossEntropy(ctx, dims)
    assert count(code) == 48 * 530 + 530 and count(desc) == 288 * 530 + 530
    assert float(desc.classifier.bias.abs().sum()) == 0.0  # TF dense: zero bias, Glorot kernel
    assert float(desc.classifier.weight.abs().max()) <= math.sqrt(6 / (288 + 530))
    small = BuildContext(2, 2, (3, 32, 32))
    part = DescriptorCrossEntropy(small, {"u": 2, "f": 2})
    with torch.no_grad():
        part.classifier.weight.copy_(torch.eye(2))
        part.classifier.bias.zero_()
    value = part({"u": torch.zeros(1, 2), "f": torch.tensor([[1.0, 0.0]])}, StepContext.of(torch.tensor([0])))
    assert abs(float(value) - math.log(1 + math.exp(-1))) < 1e-6
    with pytest.raises(BenchError, match="'f'"):
        DescriptorCrossEntropy(small, {"u": 2})


def test_quantization_with_dcbh_alpha():
    part = QuantizationLoss(BuildContext(2, 2, (3, 32, 32)), {"u": 2}, alpha=0.5)
    # |0.5 - 0.1| , |0.5 - 0.5|, |0.5 - 0.9|, |0.5 - 0| -> mean (0.4 + 0 + 0.4 + 0.5) / 4
    value = part({"u": torch.tensor([[0.1, -0.5], [0.9, 0.0]])}, StepContext.of(torch.tensor([0, 1])))
    assert abs(float(value) - 1.3 / 4) < 1e-6


# ---- registration and timm ----------------------------------------------------------------

def test_parts_are_registered(host):
    assert {"vgg16-trunc", "timm:"} <= set(host.backbones.names())
    assert "block" in host.heads.names()
    assert {"center", "ce_descriptor", "ce_code", "quantization"} <= set(host.losses.names())
    with pytest.raises(BenchError, match="unknown option 'width'"):
        host.heads.build("block", BuildContext(4, 3, (3, 32, 32)), FEATS, width=3)


def test_timm_family_resolves_and_builds_pooled_and_multiscale(host):
    ctx = BuildContext(16, 3, (3, 32, 32))
    entry, variant = host.backbones.resolve("timm:resnet18")
    assert entry.name == "timm:" and variant == "resnet18"
    pooled = host.backbones.build("timm:resnet18", ctx)
    assert pooled.feature_dims == {"pooled": 512}
    assert pooled(torch.randn(2, 3, 32, 32))["pooled"].shape == (2, 512)
    multi = host.backbones.build("timm:resnet18", ctx, features="multiscale")
    assert multi.feature_dims == {"layer3": 256, "layer4": 512}
    out = multi(torch.randn(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"layer3": (2, 256), "layer4": (2, 512)}


def test_timm_loads_a_local_checkpoint(host, tmp_path):
    import timm

    source = timm.create_model("resnet18", num_classes=0)
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    ctx = BuildContext(16, 3, (3, 32, 32))
    loaded = host.backbones.build("timm:resnet18", ctx, checkpoint=str(path), features="multiscale")
    assert torch.equal(loaded.model.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
    with pytest.raises(BenchError, match="does not exist"):
        host.backbones.build("timm:resnet18", ctx, checkpoint=str(tmp_path / "missing.pth"))


def test_timm_errors_are_one_line_bench_errors(host, monkeypatch):
    import huggingface_hub.constants

    ctx = BuildContext(16, 3, (3, 32, 32))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network, no cache
    with pytest.raises(BenchError, match="backbone.pretrained=false") as info:
        host.backbones.build("timm:resnet18", ctx, pretrained=True)
    assert "\n" not in str(info.value)
    with pytest.raises(BenchError, match="did you mean resnet18"):
        host.backbones.build("timm:resnet18x", ctx)
    with pytest.raises(BenchError, match="needs a model name"):
        host.backbones.build("timm:", ctx)
