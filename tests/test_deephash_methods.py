"""DPSH, HashNet and GreedyHash: each method's loss, assembled from plugin parts, equals a
line-by-line port of the reference's loss (swuxyj/DeepHash-pytorch@ab14068, ``DPSH.py``
``DPSHLoss``, ``HashNet.py`` ``HashNetLoss``, ``GreedyHash.py`` ``GreedyHashLoss``; the
ports below are the test's own, never imported by the package) on small fixed batches,
including the DPSH memory over several steps and HashNet's continuation scale; gradients
too. Plus the methods' defaults and deviation tags."""

from __future__ import annotations

import pytest
import torch

from bench.api.interfaces import BuildContext, StepContext
from bench.api.pluginhost import load_plugins
from bench.training.assembly import build_optimizer
from plugins.heads.straight_through import SignFCHead
from plugins.losses.classification import CodeCrossEntropy
from plugins.losses.likelihood import DPSHLikelihood, HashNetPairwise
from plugins.losses.penalties import CubicLoss, SignDistanceLoss

# ---- ports of the reference losses (DeepHash-pytorch@ab14068) --------------------------


class RefDPSHLoss(torch.nn.Module):
    def __init__(self, config, bit):
        super().__init__()
        self.U = torch.zeros(config["num_train"], bit).float().to(config["device"])
        self.Y = torch.zeros(config["num_train"], config["n_class"]).float().to(config["device"])

    def forward(self, u, y, ind, config):
        self.U[ind, :] = u.data
        self.Y[ind, :] = y.float()

        s = (y @ self.Y.t() > 0).float()
        inner_product = u @ self.U.t() * 0.5

        likelihood_loss = (1 + (-(inner_product.abs())).exp()).log() + inner_product.clamp(min=0) - s * inner_product

        likelihood_loss = likelihood_loss.mean()

        quantization_loss = config["alpha"] * (u - u.sign()).pow(2).mean()

        return likelihood_loss + quantization_loss


class RefHashNetLoss(torch.nn.Module):
    def __init__(self, config, bit):
        super().__init__()
        self.scale = 1

    def forward(self, u, y, ind, config):
        u = torch.tanh(self.scale * u)
        S = (y @ y.t() > 0).float()
        sigmoid_alpha = config["alpha"]
        dot_product = sigmoid_alpha * u @ u.t()
        mask_positive = S > 0
        mask_negative = (1 - S).bool()

        neg_log_probe = dot_product + torch.log(1 + torch.exp(-dot_product)) - S * dot_product
        S1 = torch.sum(mask_positive.float())
        S0 = torch.sum(mask_negative.float())
        S = S0 + S1

        neg_log_probe[mask_positive] = neg_log_probe[mask_positive] * S / S1
        neg_log_probe[mask_negative] = neg_log_probe[mask_negative] * S / S0

        loss = torch.sum(neg_log_probe) / S
        return loss


class RefGreedyHashLoss(torch.nn.Module):
    def __init__(self, config, bit):
        super().__init__()
        self.fc = torch.nn.Linear(bit, config["n_class"], bias=False).to(config["device"])
        self.criterion = torch.nn.CrossEntropyLoss().to(config["device"])

    def forward(self, u, onehot_y, ind, config):
        b = RefGreedyHashLoss.Hash.apply(u)
        # one-hot to label
        y = onehot_y.argmax(axis=1)
        y_pre = self.fc(b)
        loss1 = self.criterion(y_pre, y)
        loss2 = config["alpha"] * (u.abs() - 1).pow(3).abs().mean()
        return loss1 + loss2

    class Hash(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            return input.sign()

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output


# ---- helpers ---------------------------------------------------------------------------

N_TRAIN, BITS, CLASSES = 10, 6, 3
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 2])


def onehot(labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, CLASSES).float()


def context(indices, epoch=1, step=0, total_steps=1) -> StepContext:
    idx = torch.tensor(indices)
    return StepContext(LABELS[idx], idx, torch.tensor(epoch), torch.tensor(step), total_steps)


def leaf(seed: int, n: int) -> torch.Tensor:
    return (2 * torch.randn(n, BITS, generator=torch.Generator().manual_seed(seed))).requires_grad_()


def same(ours: torch.Tensor, ref: torch.Tensor, u_ours: torch.Tensor, u_ref: torch.Tensor) -> None:
    assert abs(float(ours.detach()) - float(ref.detach())) <= 1e-6
    g_ours, = torch.autograd.grad(ours, u_ours)
    g_ref, = torch.autograd.grad(ref, u_ref)
    torch.testing.assert_close(g_ours, g_ref, atol=1e-6, rtol=0)


CTX = BuildContext(BITS, CLASSES, (3, 8, 8), train_size=N_TRAIN)

# ---- DPSH ------------------------------------------------------------------------------


def test_dpsh_loss_and_memory_equal_the_reference_over_steps():
    config = {"num_train": N_TRAIN, "n_class": CLASSES, "device": "cpu", "alpha": 0.1}
    ref = RefDPSHLoss(config, BITS)
    likelihood, quant = DPSHLikelihood(CTX, {"u": BITS}), SignDistanceLoss(CTX, {"u": BITS})
    for step, indices in enumerate([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 5], [3, 1, 9, 7]]):
        u = leaf(step, len(indices))
        u_ref = u.detach().clone().requires_grad_()
        ctx = context(indices, step=step)
        ours = likelihood({"u": u}, ctx) + 0.1 * quant({"u": u}, ctx)
        same(ours, ref(u_ref, onehot(ctx.labels), ctx.indices, config), u, u_ref)
    torch.testing.assert_close(likelihood.memory_codes, ref.U, atol=0, rtol=0)
    assert {k for k, _ in likelihood.named_buffers()} == {"memory_codes", "memory_labels"}


def test_dpsh_guard_a_stale_memory_differs():
    """The test can fail: without the in-batch refresh the first loss is not the reference's."""
    config = {"num_train": N_TRAIN, "n_class": CLASSES, "device": "cpu", "alpha": 0.1}
    u = leaf(0, 4).detach()
    ref = RefDPSHLoss(config, BITS)(u, onehot(LABELS[:4]), torch.arange(4), config)
    theta = 0.5 * u @ torch.zeros(N_TRAIN, BITS).T  # memory not yet written
    stale = (torch.nn.functional.softplus(theta)).mean() + 0.1 * (u - u.sign()).pow(2).mean()
    assert abs(float(stale) - float(ref)) > 1e-3


# ---- HashNet ---------------------------------------------------------------------------


@pytest.mark.parametrize("epoch", [0, 19, 20, 45, 149])
def test_hashnet_loss_equals_the_reference_at_each_continuation_stage(epoch):
    config = {"alpha": 0.1}
    ref = RefHashNetLoss(config, BITS)
    ref.scale = (epoch // 20 + 1) ** 0.5  # the reference's train_val schedule
    u = leaf(epoch, 8)
    u_ref = u.detach().clone().requires_grad_()
    ctx = context(list(range(8)), epoch=epoch + 1)
    part = HashNetPairwise(CTX, {"u": BITS}, schedule="epochs")
    same(part({"u": u}, ctx), ref(u_ref, onehot(ctx.labels), ctx.indices, config), u, u_ref)
    # schedule=budget at the published 150 epochs of 7 steps: the same stage at every step of the epoch
    budget = HashNetPairwise(CTX, {"u": BITS})
    for j in (0, 6):
        step_ctx = context(list(range(8)), epoch=epoch + 1, step=epoch * 7 + j, total_steps=150 * 7)
        assert float(budget.scale(step_ctx)) == pytest.approx(ref.scale, abs=1e-6)


def test_hashnet_guard_and_one_identity_batch():
    config = {"alpha": 0.1}
    u = leaf(3, 8).detach()
    ref = RefHashNetLoss(config, BITS)
    ref.scale = 2.0 ** 0.5
    part = HashNetPairwise(CTX, {"u": BITS}, schedule="epochs")
    assert abs(float(part({"u": u}, context(list(range(8))))) - float(ref(u, onehot(LABELS[:8]), None, config))) > 1e-3
    ones = StepContext(torch.zeros(4, dtype=torch.int64), torch.arange(4), torch.tensor(1), torch.tensor(0), 1)
    assert torch.isfinite(part({"u": u[:4]}, ones))  # no dissimilar pair: no division by zero


# ---- GreedyHash ------------------------------------------------------------------------


def test_greedyhash_loss_equals_the_reference():
    config = {"n_class": CLASSES, "device": "cpu", "alpha": 0.1}
    torch.manual_seed(0)
    ref = RefGreedyHashLoss(config, BITS)
    head = SignFCHead(CTX, {"x": 5})
    ce = CodeCrossEntropy(CTX, head.output_dims, bias=False, init="torch")
    cubic = CubicLoss(CTX, head.output_dims)
    assert ce.classifier.bias is None
    with torch.no_grad():
        ce.classifier.weight.copy_(ref.fc.weight)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    out = head({"x": x})
    h = out["h"]
    h_ref = h.detach().clone().requires_grad_()
    ctx = context(list(range(8)))
    ours = ce(out, ctx) + 0.1 * cubic(out, ctx)
    reference = ref(h_ref, onehot(ctx.labels), ctx.indices, config)
    assert abs(float(ours.detach()) - float(reference.detach())) <= 1e-6
    g_ours, = torch.autograd.grad(ours, h)  # through the straight-through sign, as the reference's Hash
    g_ref, = torch.autograd.grad(reference, h_ref)
    torch.testing.assert_close(g_ours, g_ref, atol=1e-6, rtol=0)
    assert set(out["u"].unique().tolist()) <= {-1.0, 1.0}


# ---- the methods -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def host():
    return load_plugins()


def test_methods_defaults_follow_the_references(host):
    dpsh, hashnet, greedy = (host.methods.get(n).default_config() for n in ("dpsh", "hashnet", "greedyhash"))
    for config in (dpsh, hashnet, greedy):
        assert config.backbone.name == "vgg16-trunc" and config.optimizer.decay_scope == "all"
    assert (dpsh.optimizer.name, dpsh.optimizer.lr, dpsh.optimizer.weight_decay, dpsh.training.batch_size) == (
        "rmsprop", 1e-5, 1e-5, 128)
    assert [(t.name, t.weight) for t in dpsh.losses] == [("dpsh-likelihood", 1.0), ("sign-l2", 0.1)]
    assert (hashnet.optimizer.name, hashnet.training.batch_size, hashnet.losses[0].options["alpha"]) == ("rmsprop", 64, 0.1)
    assert (greedy.optimizer.name, greedy.optimizer.lr, greedy.optimizer.momentum, greedy.optimizer.weight_decay) == (
        "sgd", 1e-3, 0.9, 5e-4)
    assert greedy.schedule.milestones == pytest.approx([0.15, 0.3, 0.45, 0.6, 0.75, 0.9])
    opt = build_optimizer(dpsh.optimizer, torch.nn.Linear(2, 2))
    assert isinstance(opt, torch.optim.RMSprop) and opt.defaults["momentum"] == 0.0


def test_methods_tag_their_deviations(host):
    for name in ("dpsh", "hashnet", "greedyhash"):
        method = host.methods.get(name)
        config = method.default_config()
        tags = method.tags(config)
        assert "DeepHash-pytorch" in tags[f"{name}.reference"]
        assert "test set" in tags["deviation.model_selection"]
        assert not [k for k in tags if k.startswith("deviation.config.")]
        config.optimizer.lr = 0.5
        assert method.tags(config)["deviation.config.optimizer.lr"].startswith("0.5 (reference: ")
