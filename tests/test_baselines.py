"""The baseline methods: PCA-sign / PCA-ITQ floors, DDH and DSH as published, part
swaps across methods, and same-seed determinism of a full (tiny) run on CPU."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.ddh import DDHConfig
from baselines.dsh import DSHConfig
from baselines.itq import PCAITQ, PCAITQConfig, PCASign, PCASignConfig, itq, pca
from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, StepContext
from bench.api.pluginhost import default_host
from bench.cli.parsing import parse_loss
from bench.config.protocol import ProtocolConfig
from bench.config.settings import method_config
from bench.data.faces import FaceData, per_identity_split
from bench.running.execution import compute_run
from bench.running.planning import plan_runs, prepare_run
from bench.running.request import RunRequest
from bench.running.spec import RunSpec
from bench.training.assembly import build_parts


@pytest.fixture(scope="module")
def host():
    return default_host()


# ---------------------------------------------------------------- PCA, ITQ and the floors


def test_pca_directions_are_the_top_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6)) @ np.diag([5, 4, 3, 2, 1, 0.5]) @ np.linalg.qr(rng.standard_normal((6, 6)))[0]
    mean, w = pca(x, 3)
    evals, evecs = np.linalg.eigh(np.cov(x - mean, rowvar=False))
    top = evecs[:, ::-1][:, :3]
    assert np.allclose(np.abs(w.T @ top), np.eye(3), atol=1e-6)
    assert np.allclose(mean, x.mean(0))


def test_itq_rotation_is_orthogonal_and_its_loss_never_increases():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12))
    r, losses = itq(v, 50, seed=3)
    assert np.allclose(r.T @ r, np.eye(12), atol=1e-10)
    assert np.all(np.diff(losses) <= 1e-9 * losses[0])
    assert losses[-1] < losses[0]
    # the loss reported is the quantization loss of the returned rotation
    z = v @ r
    assert losses[-1] == pytest.approx(np.sum((np.where(z >= 0, 1, -1) - z) ** 2))


@pytest.mark.parametrize("bits", [12, 24, 36, 48])
def test_floors_encode_to_k_bits_from_the_training_split(bits):
    rng = np.random.default_rng(2)
    x, q = rng.standard_normal((80, 64)).astype(np.float32), rng.standard_normal((7, 64)).astype(np.float32)
    for method, config in ((PCASign(), PCASignConfig()), (PCAITQ(), PCAITQConfig())):
        encode = method.fit(x, np.zeros(80), bits, 0, config)
        assert encode(q).shape == (7, bits) and encode(q).dtype == np.float32
    mean, w = pca(x, bits)
    sign_codes = PCASign().fit(x, np.zeros(80), bits, 0, PCASignConfig())(q)
    assert np.allclose(sign_codes, (q - mean) @ w, atol=1e-4)
    # ITQ codes are a rotation of the same projection: equal norms
    itq_codes = PCAITQ().fit(x, np.zeros(80), bits, 0, PCAITQConfig())(q)
    assert np.allclose(np.linalg.norm(itq_codes, axis=1), np.linalg.norm(sign_codes, axis=1), rtol=1e-4)


def test_floors_reject_more_bits_than_the_data_has_dimensions():
    with pytest.raises(BenchError, match="use fewer bits"):
        PCAITQ().fit(np.zeros((10, 8), np.float32), np.zeros(10), 12, 0, PCAITQConfig())


# ---------------------------------------------------------------- DDH and DSH configurations


def test_methods_are_registered(host):
    assert {"ddh", "dsh", "lsh", "pca-itq", "pca-sign"} <= set(host.methods.names())
    assert {"ddh-net", "dsh-net"} <= set(host.backbones.names())
    assert "divide-encode" in host.heads.names() and "dsh-pairwise" in host.losses.names()


def test_as_published_configurations():
    ddh = DDHConfig()
    assert (ddh.backbone.name, ddh.head.name, ddh.head.options) == ("ddh-net", "divide-encode", {"split": 4})
    assert [(t.name, t.weight, t.options) for t in ddh.losses] == [
        ("ce_code", 1.0, {}), ("quantization", 0.01, {"alpha": 1.0})]
    assert (ddh.optimizer.name, ddh.optimizer.lr, ddh.optimizer.weight_decay) == ("adam", 1e-3, 2e-4)
    assert (ddh.training.batch_size, ddh.training.sampler, ddh.training.selection) == (256, "shuffle", "train_loss")
    dsh = DSHConfig()
    assert (dsh.optimizer.name, dsh.optimizer.lr, dsh.optimizer.momentum, dsh.optimizer.weight_decay) == (
        "sgd", 1e-3, 0.9, 0.004)
    assert dsh.optimizer.decay_scope == "kernels"
    assert dsh.schedule.milestones == pytest.approx([60 / 70, 65 / 70]) and dsh.schedule.gamma == 0.1
    assert (dsh.training.batch_size, dsh.training.sampler, dsh.training.ids_per_batch) == (200, "balanced", 10)
    assert dsh.head.options == {"activation": "none", "init": "caffe-xavier"}


def test_tags_record_the_l2_realisation_and_harness_standard_deviations(host):
    ddh = host.methods.get("ddh")
    published = method_config("ddh", ddh, ProtocolConfig(epochs=3))
    tags = ddh.tags(published)
    assert tags["ddh.weight_l2"].startswith("as published")
    assert "deviation.config.optimizer.weight_decay" not in tags
    assert tags["deviation.config.training.epochs"] == "3 (reference: 200)"
    standard = method_config("ddh", ddh, ProtocolConfig(epochs=3, standard="harness-standard"))
    tags = ddh.tags(standard)
    assert tags["ddh.weight_l2"].startswith("not as published")
    assert tags["deviation.config.optimizer.weight_decay"] == "0.0 (reference: 0.0002)"
    dsh = host.methods.get("dsh")
    tags = dsh.tags(method_config("dsh", dsh, ProtocolConfig(standard="harness-standard")))
    assert tags["deviation.config.optimizer.name"] == "adam (reference: sgd)"
    assert tags["deviation.config.training.batch_size"] == "128 (reference: 200)"
    assert tags["deviation.config.optimizer.bias_lr_mult"] == "absent (reference: 2.0)"  # Caffe lr_mult 2


def _build(host, name: str, bits: int = 12, **overrides):
    config = method_config(name, host.methods.get(name), ProtocolConfig(epochs=1), **overrides)
    return config, build_parts(host, config, BuildContext(bits, 5, (3, 32, 32)))


@pytest.mark.parametrize("name,overrides,parts", [
    ("dsh", {"head": "block"}, ("dsh-net", "block", ["dsh-pairwise"])),
    ("ddh", {"loss": parse_loss("+center")}, ("ddh-net", "divide-encode", ["ce_code", "quantization", "center"])),
    ("ddh", {"loss": parse_loss("dsh-pairwise")}, ("ddh-net", "divide-encode", ["dsh-pairwise"])),
    ("dsh", {"backbone": "ddh-net", "head": "divide-encode"}, ("ddh-net", "divide-encode", ["dsh-pairwise"])),
])
def test_parts_swap_across_methods(host, name, overrides, parts):
    import torch

    config, (model, loss) = _build(host, name, **overrides)
    assert (config.backbone.name, config.head.name, [t.name for t in config.losses]) == parts
    out = model(torch.randn(6, 3, 32, 32))
    total, _ = loss(out, StepContext.of(torch.tensor([0, 0, 1, 1, 2, 2])))
    total.backward()
    assert out["u"].shape == (6, 12) and torch.isfinite(total)


# ---------------------------------------------------------------- end to end, tiny


def tiny_data() -> FaceData:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    base = rng.integers(0, 256, (4, 3, 32, 32))
    images = np.clip(base[labels] + rng.integers(-30, 30, (20, 3, 32, 32)), 0, 255).astype(np.uint8)
    split = per_identity_split(labels, val=1, query=1, seed=0)
    return FaceData("tiny", images, labels, split, [f"id{i}" for i in range(4)])


@pytest.mark.parametrize("name", ["ddh", "dsh"])
def test_same_seed_gives_identical_codes_on_cpu(host, name):
    data = tiny_data()
    protocol = ProtocolConfig(dataset="tiny", epochs=2)

    def run(seed: int):
        (run,) = plan_runs(host, RunRequest(methods=[name], bits=[12], seeds=[seed], protocol=protocol, device="cpu"), data=data)
        return compute_run(run)

    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a.gallery_codes, b.gallery_codes) and np.array_equal(a.query_codes, b.query_codes)
    assert a.evaluation.metrics["map"] == b.evaluation.metrics["map"]
    for key in a.state["model"]:
        assert np.array_equal(a.state["model"][key].numpy(), b.state["model"][key].numpy()), key
    assert any(not np.array_equal(a.state["model"][k].numpy(), c.state["model"][k].numpy()) for k in a.state["model"])


@pytest.mark.parametrize("name", ["pca-itq", "pca-sign"])
def test_floors_run_through_the_harness(host, name):
    data = tiny_data()
    spec = RunSpec(method=name, bits=12, seed=0, protocol=ProtocolConfig(dataset="tiny"), method_config={},
                   device="cpu")
    computed = compute_run(prepare_run(host, spec, data=data))
    assert computed.gallery_codes.shape == (int(np.sum(data.split == 0)), 12)
    assert computed.evaluation.metrics["map"] > 0.5  # identities differ strongly in tiny_data
