"""DCDH, CSQ and OrthoHash: each loss against a line-by-line port of its reference code
(kept here, never in the package), DCDH's network against a port of the released
``DFHNet``, CSQ's Hadamard centres against ``scipy.linalg.hadamard`` and the promised
minimum distance of the generated centres, and the methods' configurations and tags."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.linalg import hadamard
from torch import nn

from bench.api.interfaces import BuildContext, StepContext
from bench.api.methods import OptimizerSpec
from bench.api.pluginhost import default_host
from bench.config.protocol import ProtocolConfig
from bench.config.settings import method_config
from bench.training.assembly import build_optimizer, build_parts, rated_parts
from plugins.backbones.dcdh_net import DCDHNet
from plugins.heads.bn_hash import BNHashHead
from plugins.losses.central import CentralSimilarityLoss
from plugins.losses.codebooks import (
    bernoulli_centres,
    gilbert_varshamov_distance,
    hadamard_centres,
    make_codebook,
    pairwise_hamming,
)
from plugins.losses.cosine_margin import CosineMarginLoss
from plugins.losses.dual_centre import CodeRegressionLoss, DualCentreLoss
from plugins.losses.quantization import QuantizationLoss

LABELS = torch.tensor([0, 0, 1, 3, 3, 3, 4, 1, 0, 4])  # class 2 absent: a zero row in Y^T Y
CLASSES, BITS = 5, 12


def ctx(bits: int = BITS, classes: int = CLASSES) -> BuildContext:
    return BuildContext(bits=bits, num_classes=classes, input_shape=(3, 32, 32), seed=0)


# ---------------------------------------------------------------- DCDH: ports of loss.py and dcdh_train.py


def ref_log(x):  # loss.py Log (the .cuda() dropped)
    lt = torch.log(1 + torch.exp(-torch.abs(x))) + torch.max(x, torch.tensor([0.]))
    return lt


def ref_dual_classwise(centers, x, labels, sigma=0.25, inner_param=0.1):  # loss.py DualClasswiseLoss.forward
    num_classes, feat_dim = centers.shape
    batch_size = x.size(0)
    distmat = torch.pow(x, 2).sum(dim=1, keepdim=True).expand(batch_size, num_classes) + \
        torch.pow(centers, 2).sum(dim=1, keepdim=True).expand(num_classes, batch_size).t()
    distmat.addmm_(x, centers.t(), beta=1, alpha=-2)
    dist_div = torch.exp(-0.5 * sigma * distmat) / (torch.exp(-0.5 * sigma * distmat).sum(dim=1, keepdim=True) + 1e-6)
    classes = torch.arange(num_classes).long()
    labels = labels.view(-1, 1).expand(batch_size, num_classes)
    mask = labels.eq(classes.expand(batch_size, num_classes))
    dist_log = torch.log(dist_div + 1e-6) * mask.float()
    loss = -dist_log.sum() / batch_size
    centers_norm = F.normalize(centers, dim=1)
    theta_x = 0.5 * feat_dim * centers_norm.mm(centers_norm.t())
    mask = torch.eye(num_classes, num_classes).bool()
    theta_x.masked_fill_(mask, 0)
    loss_iner = ref_log(theta_x).sum() / (num_classes * (num_classes - 1))
    loss_full = loss + inner_param * loss_iner
    return loss_full


def ref_encoding_onehot(target, nclasses):  # utils.py EncodingOnehot
    target_onehot = torch.Tensor(target.size(0), nclasses)
    target_onehot.zero_()
    target_onehot.scatter_(1, target.cpu().view(-1, 1), 1)
    return target_onehot


def ref_dcdh_step_loss(centers, hash_bits, labels, classes, eta=0.01):  # dcdh_train.py train(), one step
    loss_dual = ref_dual_classwise(centers, hash_bits, labels)
    hash_binary = torch.sign(hash_bits)
    batchY = ref_encoding_onehot(labels, classes)
    W = torch.pinverse(batchY.t() @ batchY) @ batchY.t() @ hash_binary           # Update W
    batchB = torch.sign(torch.mm(batchY, W) + eta * hash_bits)  # Update B
    loss_vertex = (hash_bits - batchB).pow(2).sum() / len(hash_bits)     # quantization loss
    loss_h = loss_dual + eta * loss_vertex
    return loss_h


def test_dcdh_loss_equals_the_released_step():
    torch.manual_seed(0)
    u = torch.randn(len(LABELS), BITS, requires_grad=True)
    centres, regression = DualCentreLoss(ctx(), {"u": BITS}), CodeRegressionLoss(ctx(), {"u": BITS})
    context = StepContext.of(LABELS)
    ours = centres({"u": u}, context) + 0.01 * regression({"u": u}, context)
    ref_u = u.detach().clone().requires_grad_(True)
    ref_c = centres.centres.detach().clone().requires_grad_(True)
    ref = ref_dcdh_step_loss(ref_c, ref_u, LABELS, CLASSES)
    assert abs(ours.item() - ref.item()) < 1e-6
    ours.backward()
    ref.backward()
    assert torch.allclose(u.grad, ref_u.grad, atol=1e-6)
    assert torch.allclose(centres.centres.grad, ref_c.grad, atol=1e-6)
    # guard: a different sigma moves the loss
    assert abs(ref_dual_classwise(ref_c.detach(), u.detach(), LABELS, sigma=0.5).item() - ref.item()) > 1e-3


def ref_dfhnet_forward(net, x):  # model.py DFHNet.forward, on a state dict of the released module names
    def seq(prefix, x, layers):
        for kind, i in layers:
            if kind == "conv":
                x = F.conv2d(x, net[f"{prefix}.{i}.weight"], net[f"{prefix}.{i}.bias"], stride=STRIDES.get(prefix, 1),
                             padding=PADS.get(prefix, 0))
            elif kind == "bn":
                x = F.batch_norm(x, None, None, net[f"{prefix}.{i}.weight"], net[f"{prefix}.{i}.bias"], training=True)
            elif kind == "relu":
                x = F.relu(x)
            else:
                x = F.max_pool2d(x, 2, 2)
        return x

    def up(prefix, x):
        return F.relu(F.conv_transpose2d(x, net[f"{prefix}.0.weight"], net[f"{prefix}.0.bias"], stride=2, padding=1,
                                         output_padding=1))

    def bn(name, x):
        return F.batch_norm(x, None, None, net[f"{name}.weight"], net[f"{name}.bias"], training=True)

    cbr = [("conv", 0), ("bn", 1), ("relu", 2)]
    attention_mask_16 = seq("spatial_features_1", x, cbr)
    attention_mask_8 = seq("spatial_features_2", attention_mask_16, cbr)
    attention_mask_4 = seq("spatial_features_3", attention_mask_8, cbr)
    attention_mask = seq("fc", attention_mask_4, cbr)
    attention_mask = bn("bn1", up("upscales_1", attention_mask) + attention_mask_8)
    attention_mask = bn("bn2", up("upscales_2", attention_mask) + attention_mask_16)
    attention_mask = up("upscales_3", attention_mask)
    attention_mask = torch.sigmoid(F.conv2d(attention_mask, net["upscales_4.0.weight"], net["upscales_4.0.bias"]))
    feature_trunk = x
    for i in range(1, 5):
        feature_trunk = seq(f"attention_conv{i}", feature_trunk, cbr)
    feature_catenate = feature_trunk + attention_mask * feature_trunk
    features_3 = seq("features", feature_catenate, [("conv", 0), ("bn", 1), ("relu", 2), ("pool", 3), ("conv", 4),
                                                    ("bn", 5), ("relu", 6), ("pool", 7), ("conv", 8), ("bn", 9),
                                                    ("relu", 10), ("pool", 11)])
    features_4 = seq("conv4", features_3, cbr)
    features_a = torch.cat([features_3.view(features_3.size(0), -1), features_4.view(features_4.size(0), -1)], -1)
    features_a = F.relu(F.batch_norm(features_a @ net["face_features_layer.0.weight"].T + net["face_features_layer.0.bias"],
                                     None, None, net["face_features_layer.1.weight"], net["face_features_layer.1.bias"],
                                     training=True))
    hash_a = features_a @ net["hash_layer.0.weight"].T + net["hash_layer.0.bias"]
    return F.batch_norm(hash_a, None, None, net["hash_layer.1.weight"], net["hash_layer.1.bias"], training=True)


STRIDES = {"spatial_features_1": 2, "spatial_features_2": 2, "spatial_features_3": 2}
PADS = {f"attention_conv{i}": 1 for i in range(1, 4)}
RELEASED_NAMES = {  # our module -> the released DFHNet's
    "backbone.encode.0": "spatial_features_1", "backbone.encode.1": "spatial_features_2",
    "backbone.encode.2": "spatial_features_3", "backbone.bottleneck": "fc",
    "backbone.decode.0": "upscales_1", "backbone.decode.1": "upscales_2", "backbone.decode.2": "upscales_3",
    "backbone.skip_norms.0": "bn1", "backbone.skip_norms.1": "bn2", "backbone.mask_out": "upscales_4.0",
    **{f"backbone.trunk.{i}": f"attention_conv{i + 1}" for i in range(4)},
    **{f"backbone.conv3.{2 * i}.{j}": f"features.{4 * i + j}" for i in range(3) for j in (0, 1)},
    "backbone.conv4": "conv4", "backbone.face": "face_features_layer", "head.linear": "hash_layer.0",
    "head.norm": "hash_layer.1",
}


def test_dcdh_network_equals_the_released_dfhnet():
    torch.manual_seed(0)
    backbone = DCDHNet(ctx(48))
    head = BNHashHead(ctx(48), backbone.feature_dims, bias=True, init="xavier-normal")
    model = nn.ModuleDict({"backbone": backbone, "head": head})
    released = {}
    for name, param in model.named_parameters():
        module, leaf = name.rsplit(".", 1)
        mapped = next(RELEASED_NAMES[m] + module[len(m):] for m in sorted(RELEASED_NAMES, key=len, reverse=True)
                      if module.startswith(m))
        released[f"{mapped}.{leaf}"] = param.detach()
    assert len(released) == 68  # the released DFHNet's 70 tensors less the unused bn3's two
    x = torch.rand(4, 3, 32, 32)
    ours = head(backbone(x))["u"]
    assert backbone.feature_dims == {"face": 1024}
    assert torch.allclose(ours, ref_dfhnet_forward(released, x), atol=1e-5)


# ---------------------------------------------------------------- CSQ: port of CSQ.py


def ref_csq_loss(hash_targets, u, y, lam=0.0001):  # CSQ.py CSQLoss.forward, single label
    u = u.tanh()
    hash_center = hash_targets[y.argmax(axis=1)]
    center_loss = torch.nn.BCELoss()(0.5 * (u + 1), 0.5 * (hash_center + 1))
    Q_loss = (u.abs() - 1).pow(2).mean()
    return center_loss + lam * Q_loss


def ref_hash_targets(n_class, bit):  # CSQ.py get_hash_targets where n_class <= 2K
    H_K = hadamard(bit)
    H_2K = np.concatenate((H_K, -H_K), 0)
    return torch.from_numpy(H_2K[:n_class]).float()


@pytest.mark.parametrize("bits,classes", [(16, 5), (32, 64), (8, 16)])
def test_hadamard_centres_are_the_released_targets(bits, classes):
    assert torch.equal(hadamard_centres(classes, bits), ref_hash_targets(classes, bits))


@pytest.mark.parametrize("bits", [12, 16])
def test_csq_loss_equals_the_released_loss(bits):
    torch.manual_seed(1)
    raw = torch.randn(len(LABELS), bits) * 2
    central = CentralSimilarityLoss(ctx(bits), {"u": bits})
    quant = QuantizationLoss(ctx(bits), {"u": bits}, alpha=1.0, power=2.0)
    out, context = {"u": raw.tanh()}, StepContext.of(LABELS)
    ours = central(out, context) + 1e-4 * quant(out, context)
    ref = ref_csq_loss(central.centres, raw, F.one_hot(LABELS, CLASSES).float())
    assert abs(ours.item() - ref.item()) < 1e-6
    assert abs(ref_csq_loss(-central.centres, raw, F.one_hot(LABELS, CLASSES).float()).item() - ref.item()) > 1e-2


BITS_1595 = {12: 1, 24: 4, 36: 8, 48: 12}  # the promised (Gilbert-Varshamov) distance at 1,595 classes


@pytest.mark.parametrize("bits", sorted(BITS_1595))
def test_generated_centres_keep_the_promised_minimum_distance(bits):
    start = time.perf_counter()
    centres = make_codebook("hadamard", 1595, bits, seed=3)  # not a power of two: min-distance
    elapsed = time.perf_counter() - start
    d = pairwise_hamming(centres)
    assert gilbert_varshamov_distance(1595, bits) == BITS_1595[bits]
    assert centres.shape == (1595, bits) and set(centres.unique().tolist()) == {-1.0, 1.0}
    assert int(d.min()) >= BITS_1595[bits]
    assert abs(float(d.mean()) - bits / 2) < 0.05 * bits
    assert elapsed < 30  # about a second on one loaded core
    if bits == 48:  # guard: plain Bernoulli centres break the promise
        assert int(pairwise_hamming(bernoulli_centres(1595, bits)).min()) < BITS_1595[bits]


def test_hadamard_rows_run_out_into_min_distance_rows():
    centres = make_codebook("hadamard", 40, 16, seed=0)
    assert torch.equal(centres[:32], ref_hash_targets(32, 16))
    assert int(pairwise_hamming(centres).min()) >= gilbert_varshamov_distance(40, 16)


# ---------------------------------------------------------------- OrthoHash: ports of CosSim and OrthoHashLoss


def ref_orthohash_loss(codebook, v, labels_onehot, s=8, m=0.2, m_type="cos"):
    # models/alexnet.py CosSim.forward
    norms = torch.norm(v, p=2, dim=-1, keepdim=True)
    nfeat = torch.div(v, norms)
    norms_c = torch.norm(codebook, p=2, dim=-1, keepdim=True)
    ncenters = torch.div(codebook, norms_c)
    logits = torch.matmul(nfeat, torch.transpose(ncenters, 0, 1))
    # functions/loss/orthohash.py OrthoHashLoss.forward, single label, quan = 0
    labels = labels_onehot.argmax(1)
    if m_type == "cos":
        y_onehot = torch.zeros_like(logits)
        y_onehot.scatter_(1, torch.unsqueeze(labels, dim=-1), m)
        margin_logits = s * (logits - y_onehot)
    else:
        y_onehot = torch.zeros_like(logits)
        y_onehot.scatter_(1, torch.unsqueeze(labels, dim=-1), m)
        arc_logits = torch.acos(logits.clamp(-0.99999, 0.99999))
        logits = torch.cos(arc_logits + y_onehot)
        margin_logits = s * logits
    return F.cross_entropy(margin_logits, labels)


@pytest.mark.parametrize("margin_type,margin", [("cos", 0.2), ("cos", 0.3), ("arc", 0.2)])
def test_orthohash_loss_equals_the_released_loss(margin_type, margin):
    torch.manual_seed(2)
    v = torch.randn(len(LABELS), BITS)
    part = CosineMarginLoss(ctx(), {"u": BITS}, scale=8.0, margin=margin, margin_type=margin_type)
    ours = part({"u": v}, StepContext.of(LABELS))
    ref = ref_orthohash_loss(part.codebook, v, F.one_hot(LABELS, CLASSES).float(), m=margin, m_type=margin_type)
    assert abs(ours.item() - ref.item()) < 1e-6
    assert abs(ref_orthohash_loss(part.codebook, v, F.one_hot(LABELS, CLASSES).float(), m=0.0).item() - ref.item()) > 1e-2
    assert "codebook" in part.state_dict() and not list(part.parameters())


# ---------------------------------------------------------------- the methods


@pytest.fixture(scope="module")
def host():
    return default_host()


def test_released_configurations_and_tags(host):
    assert {"dcdh", "csq", "orthohash"} <= set(host.methods.names())
    assert "dcdh-net" in host.backbones.names() and "bn-hash" in host.heads.names()
    assert {"dcdh-centres", "dcdh-regression", "csq-central", "cosine-margin-ce"} <= set(host.losses.names())
    protocol = ProtocolConfig(epochs=3)
    dcdh = method_config("dcdh", host.methods.get("dcdh"), protocol)
    assert (dcdh.optimizer.name, dcdh.optimizer.lr, dcdh.optimizer.weight_decay, dcdh.optimizer.amsgrad) == (
        "adam", 0.005, 1e-4, True)
    assert dcdh.schedule.milestones == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]) and dcdh.schedule.gamma == 0.5
    assert [(t.name, t.weight) for t in dcdh.losses] == [("dcdh-centres", 1.0), ("dcdh-regression", 0.01)]
    csq = method_config("csq", host.methods.get("csq"), protocol)
    assert (csq.optimizer.name, csq.optimizer.lr, csq.optimizer.momentum, csq.training.batch_size) == (
        "rmsprop", 1e-5, 0.0, 64)
    ortho = method_config("orthohash", host.methods.get("orthohash"), protocol)
    assert ortho.backbone.name == "vgg16-trunc" and ortho.backbone.lr_mult == 0.1
    for name, config, published in (("dcdh", dcdh, 600), ("csq", csq, 150), ("orthohash", ortho, 100)):
        tags = host.methods.get(name).tags(config)
        config_deviations = {k for k in tags if k.startswith("deviation.config.")}
        assert config_deviations == {"deviation.config.training.epochs"}, name
        assert tags["deviation.config.training.epochs"] == f"3 (reference: {published})"
        assert any(k.startswith("deviation.") and not k.startswith("deviation.config.") for k in tags)
    standard = method_config("csq", host.methods.get("csq"), ProtocolConfig(standard="harness-standard"))
    assert host.methods.get("csq").tags(standard)["deviation.config.optimizer.name"] == "adam (reference: rmsprop)"


def test_orthohash_backbone_trains_at_a_tenth_of_the_rate(host):
    config = method_config("orthohash", host.methods.get("orthohash"), ProtocolConfig(epochs=1))
    model, loss = build_parts(host, config, ctx(BITS))
    optimizer = build_optimizer(config.optimizer, *rated_parts(config, model, loss))
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    backbone, head = list(model.backbone.parameters()), list(model.head.parameters())
    assert [rate[id(p)] for p in backbone] == pytest.approx([1e-5] * len(backbone))
    assert [rate[id(p)] for p in head] == pytest.approx([1e-4] * len(head))
    assert all(g["weight_decay"] == 5e-4 for g in optimizer.param_groups)  # decay_scope=all, as configs.optimizer


def test_amsgrad_and_rmsprop_reach_torch():
    layer = nn.Linear(3, 2)
    adam = build_optimizer(OptimizerSpec(name="adam", amsgrad=True), layer)
    assert all(group["amsgrad"] for group in adam.param_groups)
    rms = build_optimizer(OptimizerSpec(name="rmsprop", lr=0.1, momentum=0.0, weight_decay=0.5, decay_scope="all"),
                          layer, fused=True)
    assert isinstance(rms, torch.optim.RMSprop) and rms.param_groups[0]["weight_decay"] == 0.5
    assert OptimizerSpec().model_dump() == OptimizerSpec(amsgrad=False).model_dump()  # old configs hash as before
    assert "amsgrad" not in OptimizerSpec().model_dump()
