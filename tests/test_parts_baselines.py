"""Parts added for DDH and DSH, checked against independent references: explicit loops,
hand-written formulas, and the released layers' own gradient code."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, StepContext
from bench.api.methods import OptimizerSpec
from bench.training.assembly import build_optimizer, kernel_parameters
from plugins.backbones.ddh_net import DDHNet, ddh_geometry
from plugins.backbones.dsh_net import DSHNet, WithinChannelLRN
from plugins.heads.divide_encode import DivideEncodeHead
from plugins.heads.fc import FCHead
from plugins.layers.locally_connected import LocallyConnected2d
from plugins.losses.pairwise import DSHPairwiseLoss, dsh_pairwise_loss

BITS = (12, 24, 36, 48)


def ctx(bits: int = 12, size: int = 32, classes: int = 5) -> BuildContext:
    return BuildContext(bits=bits, num_classes=classes, input_shape=(3, size, size), seed=0)


# ---------------------------------------------------------------- locally connected layer


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_locally_connected_equals_per_position_loop(stride, padding):
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 4, (5, 6), kernel_size=(2, 3), stride=stride, padding=padding)
    x = torch.randn(2, 3, 5, 6)
    out = layer(x)
    oh, ow = layer.output_size
    xp = F.pad(x, (padding,) * 4)
    w = layer.weight.detach().view(oh, ow, 3, 2, 3, 4)  # (i, j, c, a, b, o)
    expected = torch.zeros(2, 4, oh, ow)
    for n in range(2):
        for i in range(oh):
            for j in range(ow):
                for o in range(4):
                    total = layer.bias[o, i, j].item()
                    for c in range(3):
                        for a in range(2):
                            for b in range(3):
                                total += w[i, j, c, a, b, o].item() * xp[n, c, i * stride + a, j * stride + b].item()
                    expected[n, o, i, j] = total
    assert out.shape == (2, 4, oh, ow)
    assert torch.allclose(out, expected, atol=1e-5)


def test_locally_connected_with_shared_weights_is_a_convolution():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 5, 2)
    layer = LocallyConnected2d(3, 5, (4, 4), 2)
    with torch.no_grad():
        layer.weight.copy_(conv.weight.reshape(5, -1).T.expand(9, -1, -1))
        layer.bias.copy_(conv.bias.view(5, 1, 1).expand(5, 3, 3))
    x = torch.randn(3, 3, 4, 4)
    assert torch.allclose(layer(x), conv(x), atol=1e-5)


def test_locally_connected_kernel_is_decayed_and_bias_is_not():
    layer = LocallyConnected2d(2, 3, (3, 3), 2)
    assert kernel_parameters(nn.Sequential(layer)) == {id(layer.weight)}
    opt = build_optimizer(OptimizerSpec(weight_decay=2e-4), layer)
    decayed = [g for g in opt.param_groups if g["weight_decay"]]
    assert [id(p) for p in decayed[0]["params"]] == [id(layer.weight)]


def test_locally_connected_rejects_too_small_inputs():
    with pytest.raises(BenchError, match="does not fit"):
        LocallyConnected2d(3, 4, (1, 1), 2)


# ---------------------------------------------------------------- DDH network and head


def test_ddh_backbone_gives_the_860_d_merged_layer():
    net = DDHNet(ctx())
    assert net.feature_dims == {"merged": 860}
    assert ddh_geometry(32) == (3, 2)
    out = net(torch.randn(4, 3, 32, 32))
    assert out["merged"].shape == (4, 860)
    assert net.conv4.weight.shape == (4, 60 * 2 * 2, 80)  # 2x2 positions, unshared
    # conv kernels and the locally connected kernel are the decayed parameters
    kernels = kernel_parameters(net)
    assert id(net.conv4.weight) in kernels and len(kernels) == 4


def test_ddh_init_is_keras1_he_uniform():
    net = DDHNet(ctx())
    conv1 = net.blocks[0][0]
    assert conv1.weight.abs().max() <= math.sqrt(6 / 27) and conv1.weight.abs().max() > 0.8 * math.sqrt(6 / 27)
    lc_bound = math.sqrt(6 / math.sqrt(4 * 240 * 80))  # Keras 1 fan rule for 3-D kernels
    assert lc_bound * 0.95 < net.conv4.weight.abs().max() <= lc_bound
    assert float(net.conv4.bias.detach().abs().sum()) == 0.0


def test_ddh_batchnorm_follows_keras1_defaults_unless_told():
    def momenta(*modules):
        return {m.momentum for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}

    assert momenta(DDHNet(ctx()), DivideEncodeHead(ctx(), {"merged": 860})) == {0.01}  # Keras momentum 0.99
    assert momenta(DDHNet(ctx(), bn_momentum=0.1), DivideEncodeHead(ctx(), {"m": 8}, bn_momentum=0.1)) == {0.1}


def test_ddh_backbone_rejects_small_inputs():
    with pytest.raises(BenchError, match="at least 24x24"):
        DDHNet(ctx(size=16))


@pytest.mark.parametrize("bits", BITS)
def test_divide_encode_shapes_and_parameter_counts(bits):
    head = DivideEncodeHead(ctx(bits), {"merged": 860})
    out = head({"merged": torch.randn(6, 860)})
    assert out["u"].shape == (6, bits) and out["f"].shape == (6, 4 * bits)
    assert head.output_dims == {"u": bits, "f": 4 * bits}
    assert sum(p.numel() for p in head.encode.parameters()) == 5 * bits  # 4 weights + 1 bias per bit
    assert sum(p.numel() for p in head.face[0].parameters()) == 860 * 4 * bits + 4 * bits
    assert bool((out["u"].abs() < 1).all())


def test_divide_encode_at_48_bits_has_240_parameters():
    head = DivideEncodeHead(ctx(48), {"merged": 860})
    assert sum(p.numel() for p in head.encode.parameters()) == 240


def test_divide_encode_equals_one_linear_per_bit_then_bn_then_tanh():
    torch.manual_seed(0)
    head = DivideEncodeHead(ctx(6), {"a": 10, "b": 7}).eval()
    feats = {"a": torch.randn(5, 10), "b": torch.randn(5, 7)}
    f = torch.relu(head.face[1](head.face[0](torch.cat([feats["a"], feats["b"]], 1))))
    fused = []
    for k in range(6):
        lin = nn.Linear(4, 1)
        with torch.no_grad():
            lin.weight.copy_(head.encode.weight[k].view(1, 4))
            lin.bias.copy_(head.encode.bias[k].view(1))
        fused.append(lin(f[:, 4 * k : 4 * k + 4]))
    expected = torch.tanh(head.bn(torch.cat(fused, 1)))
    out = head(feats)
    assert torch.allclose(out["f"], f, atol=1e-6)
    assert torch.allclose(out["u"], expected, atol=1e-6)


def test_divide_encode_without_face_feature_needs_4k_inputs():
    head = DivideEncodeHead(ctx(12), {"x": 48}, face_feature=False)
    assert head(dict(x=torch.randn(3, 48)))["u"].shape == (3, 12)
    with pytest.raises(BenchError, match="face_feature"):
        DivideEncodeHead(ctx(12), {"x": 50}, face_feature=False)


# ---------------------------------------------------------------- DSH network and head


@pytest.mark.parametrize("bits", BITS)
def test_dsh_network_and_linear_code_layer_shapes(bits):
    net = DSHNet(ctx(bits))
    head = FCHead(ctx(bits), net.feature_dims, activation="none", init="caffe-xavier")
    feats = net(torch.randn(3, 3, 32, 32))
    assert feats["fc"].shape == (3, 500)
    u = head(feats)["u"]
    assert u.shape == (3, bits)
    assert not torch.allclose(u, torch.tanh(u))  # no activation on DSH's ip1
    assert float(head.linear.bias.detach().abs().sum()) == 0.0
    assert head.linear.weight.abs().max() <= math.sqrt(3 / 500)


def test_dsh_network_uses_caffe_ceil_pooling_geometry():
    net = DSHNet(ctx())
    # Caffe: 32 -> pool 3/2 ceil -> 16 -> 8 -> 4, so FC500 reads 64 * 4 * 4 values
    assert net.fc.in_features == 64 * 4 * 4
    assert sum(p.numel() for p in net.parameters()) == (
        3 * 32 * 25 + 32 + 32 * 32 * 25 + 32 + 32 * 64 * 25 + 64 + 1024 * 500 + 500
    )


def test_within_channel_lrn_matches_the_caffe_formula():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 4) * 10
    lrn = WithinChannelLRN(3, alpha=5e-3, beta=0.75)
    xp = F.pad(x, (1, 1, 1, 1))
    expected = torch.empty_like(x)
    for i in range(5):
        for j in range(4):
            window = xp[:, :, i : i + 3, j : j + 3]
            expected[:, :, i, j] = x[:, :, i, j] / (1 + 5e-3 / 9 * (window**2).sum((2, 3))) ** 0.75
    assert torch.allclose(lrn(x), expected, atol=1e-5)


# ---------------------------------------------------------------- DSH pairwise loss


def naive_dsh(b: torch.Tensor, labels: list[int], m: float, alpha: float) -> torch.Tensor:
    n = b.shape[0]
    total = torch.zeros(())
    for i in range(n):
        for j in range(i + 1, n):
            d = ((b[i] - b[j]) ** 2).sum()
            if labels[i] == labels[j]:
                total = total + 0.5 * d
            else:
                total = total + 0.5 * torch.clamp(m - d, min=0)
    reg = sum((b[i].abs() - 1).abs().sum() for i in range(n))
    return total / (n * (n - 1)) + alpha * reg / n


def caffe_gradient(b: torch.Tensor, labels: list[int], m: float, alpha: float) -> torch.Tensor:
    """The released HashingLossLayer::Forward_cpu's hand-written gradient (bout)."""
    n, k = b.shape
    a, beta = 1.0 / (n * (n - 1)), 1.0 / n
    bout = torch.zeros(n, k, dtype=torch.float64)
    x = b.double()
    for i in range(n):
        for j in range(i + 1, n):
            diff = x[i] - x[j]
            d = float((diff * diff).sum())
            if labels[i] == labels[j]:
                bout[i] += a * diff
                bout[j] -= a * diff
            elif m - d > 0:
                bout[i] -= a * diff
                bout[j] += a * diff
        for c in range(k):
            v = float(x[i, c])
            bout[i, c] += beta * alpha * (1.0 if (v >= 1 or -1 <= v <= 0) else -1.0)
    return bout


@pytest.mark.parametrize("bits", [4, 12])
def test_dsh_loss_equals_the_naive_double_loop_value_and_gradient(bits):
    torch.manual_seed(bits)
    labels = [0, 0, 1, 1, 1, 2, 3, 0]
    b = (torch.randn(len(labels), bits) * 0.7).requires_grad_()
    margin = 2.0 * bits * 0.4
    dist = torch.cdist(b.detach(), b.detach()) ** 2
    different = torch.tensor(labels)[:, None] != torch.tensor(labels)[None, :]
    assert (dist[different] < margin).any() and (dist[different] > margin).any()  # both hinge regimes
    value = dsh_pairwise_loss(b, torch.tensor(labels), margin, 0.01)
    (grad,) = torch.autograd.grad(value, b)
    b_ref = b.detach().clone().requires_grad_()
    ref = naive_dsh(b_ref, labels, margin, 0.01)
    (grad_ref,) = torch.autograd.grad(ref, b_ref)
    assert value.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(grad, grad_ref, atol=1e-6)
    assert torch.allclose(grad.double(), caffe_gradient(b.detach(), labels, margin, 0.01), atol=1e-6)


def test_dsh_loss_part_defaults_to_margin_2k_and_reads_u():
    part = DSHPairwiseLoss(ctx(24), {"u": 24})
    assert part.margin == 48.0 and part.alpha == 0.01
    u = torch.randn(5, 24)
    labels = torch.tensor([0, 1, 0, 2, 1])
    assert torch.allclose(part({"u": u}, StepContext.of(labels)), dsh_pairwise_loss(u, labels, 48.0, 0.01))
    assert float(dsh_pairwise_loss(torch.ones(1, 3) * 2, torch.tensor([0]), 6.0, 0.5)) == pytest.approx(0.5 * 3)
    with pytest.raises(BenchError, match="margin"):
        DSHPairwiseLoss(ctx(24), {"u": 24}, margin=-1.0)
