"""Deep methods and floors on a pretrained backbone, with a small stand-in network installed
as a third-party plugin (a :class:`PretrainedBackbone`; the dlib network plugs in the same
way): the float top line and the floors on its embeddings run in one table; a frozen deep
run trains only its head and loss on features computed once and cached; a fine-tuned run
trains the backbone at x0.1; backbone and mode are in the tags, the run label and the
protocol fingerprint (never shared with runs from scratch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

TINY = ["--dataset", "synthfaces", "--set", "dataset.identities=5", "--set", "dataset.images_per_identity=6",
        "--set", "dataset.val=1", "--set", "dataset.query=2"]

PLUGIN = '''
import torch
from torch import nn
from bench import hookimpl
from bench.api.interfaces import BackboneInputs, PretrainedBackbone
from baselines.embedding import embedding_methods

CALLS = {"forward": 0}


class TinyNet(PretrainedBackbone):
    """A stand-in for a pretrained face network: a fixed random conv net, 16-D embeddings."""

    def __init__(self, ctx, width=4):
        super().__init__()
        self.conv = nn.Conv2d(ctx.input_shape[0], width, 3, stride=2)
        self.fc = nn.Linear(width, 16, bias=False)
        self.feature_dims = {"embedding": 16}

    def forward(self, x):
        CALLS["forward"] += 1
        return {"embedding": self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))}


class TinyNet16(TinyNet):
    """The stand-in reading its own view of the data: 16 px images, pixels / 255."""

    expects = BackboneInputs(input_size=16, normalisation="unit")

    def forward(self, x):
        assert x.shape[2:] == (16, 16) and float(x.max()) <= 1.0
        return super().forward(x)


def build_tiny16(ctx, width=4) -> TinyNet16:
    return TinyNet16(ctx, width)


@hookimpl
def register_backbones(register):
    register("tiny-pretrained", TinyNet)
    register("tiny-16", build_tiny16)


@hookimpl
def register_methods(register):
    for name, method in embedding_methods("tiny", "tiny-pretrained").items():
        register(name, method)
    register("tiny16-pca-itq", embedding_methods("tiny16", "tiny-16")["tiny16-pca-itq"])
'''


@pytest.fixture
def tiny_plugin(plugin_site):
    from tests.conftest import install_plugin

    install_plugin(plugin_site, "tiny-pretrained", "tiny_pretrained", PLUGIN)
    import tiny_pretrained

    return tiny_pretrained


def _children(store: str):
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId")]


def test_top_line_and_floors_on_embeddings_in_one_table(cli, store, tiny_plugin):
    methods = "tiny-float,tiny-lsh,tiny-pca-sign,tiny-pca-rr,tiny-pca-itq"
    code, out, err = cli("run", "--method", methods, "--bits", "4,8", "--tracking-uri", store, *TINY)
    assert code == 0, err
    for name in methods.split(","):
        assert name in out
    assert "B/face" in out and "bytes per face" in out  # the float row beside the codes
    runs = _children(store)
    assert len(runs) == 10 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        assert tags["facehash.pretrained.backbone"] == "tiny-pretrained" and tags["facehash.pretrained.mode"] == "frozen"
        if tags["facehash.method"] == "tiny-float":
            assert tags["facehash.ranking"] == "cosine" and metrics["bytes_per_face"] == 64.0  # 16 float32
            assert "precision_r2" not in metrics and 0 < metrics["map"] <= 1
        else:
            assert tags["facehash.ranking"] == "hamming"
            assert metrics["bytes_per_face"] == int(tags["facehash.bits"]) / 8
    floats = {r.data.metrics["map"] for r in runs if r.data.tags["facehash.method"] == "tiny-float"}
    assert len(floats) == 1  # no bits: the same top line at every code length
    assert tiny_plugin.CALLS["forward"] <= 3  # one pass per split part, shared by the 10 runs
    top = next(r for r in runs if r.data.tags["facehash.method"] == "tiny-float")
    code, _, err = cli("eval", top.info.run_id, "--tracking-uri", store)
    assert code == 2 and "float top line" in err and "\n" not in err.strip()
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--dataset", "synthfaces")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "tiny-float" in line and "│" in line]
    assert "bytes_per_face" in out and rows and all(line.split("│")[-2].strip() == "64" for line in rows[-2:])


def test_floor_codes_equal_the_floor_on_independent_embeddings(tiny_plugin):
    from baselines.itq import PCAITQ
    from bench.api.interfaces import BuildContext
    from bench.api.pluginhost import default_host
    from bench.config.protocol import ProtocolConfig
    from bench.data.faces import QUERY, TRAIN
    from bench.evaluation.codes import sign_codes
    from bench.running.execution import compute_run
    from bench.running.planning import plan_runs
    from bench.running.request import RunRequest

    host = default_host()
    protocol = ProtocolConfig(dataset="synthfaces", dataset_options={"identities": 5, "images_per_identity": 6,
                                                                     "val": 1, "query": 2})
    [run] = plan_runs(host, RunRequest(methods=["tiny-pca-itq"], bits=[8], seeds=[3], protocol=protocol))
    computed = compute_run(run)
    data = run.data
    normaliser = host.normalisers.build(protocol.normalisation, data.images, data.split)
    torch.manual_seed(0)
    net = tiny_plugin.TinyNet(BuildContext(1, 5, data.image_shape)).eval()

    def embed(part):
        with torch.no_grad():
            return net(normaliser.apply(torch.from_numpy(data.part(part)[0]), part))["embedding"].numpy()

    encode = PCAITQ().fit(embed(TRAIN), data.part(TRAIN)[1], 8, 3, PCAITQ.Config())
    np.testing.assert_array_equal(computed.query_codes, sign_codes(encode(embed(QUERY))))
    np.testing.assert_array_equal(computed.gallery_codes, sign_codes(encode(embed(TRAIN))))


def test_frozen_deep_run_trains_the_head_on_cached_features(cli, store, tiny_plugin):
    from bench.data.cache import cache_root

    code, out, err = cli("run", "--method", "csq,dcbh", "--bits", "8", "--epochs", "2", "--backbone",
                         "tiny-pretrained", "--tracking-uri", store, *TINY)
    assert code == 0, err
    assert tiny_plugin.CALLS["forward"] <= 3  # the features, once, for both methods
    assert list((cache_root() / "embeddings").glob("*.npz"))
    runs = _children(store)
    assert {r.data.tags["facehash.method"] for r in runs} == {"csq", "dcbh"}
    for run in runs:
        tags = run.data.tags
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.runName"].endswith(
            "[backbone=tiny-pretrained,backbone_mode=frozen]-8b-s0")
        assert tags["facehash.pretrained.backbone"] == "tiny-pretrained"
        assert tags["facehash.pretrained.mode"] == "frozen" and "facehash.pretrained.lr_mult" not in tags
    frozen_fp = runs[0].data.tags["facehash.protocol_fingerprint"]
    code, _, err = cli("run", "--method", "csq", "--bits", "8", "--epochs", "2", "--tracking-uri", store, *TINY)
    assert code == 0, err
    code, _, err = cli("run", "--method", "csq", "--bits", "8", "--epochs", "2", "--backbone", "tiny-pretrained",
                       "--backbone-mode", "fine-tune", "--tracking-uri", store, *TINY)
    assert code == 0, err
    fps = {r.data.tags["facehash.pretrained.mode"] if "facehash.pretrained.mode" in r.data.tags else "scratch":
           r.data.tags["facehash.protocol_fingerprint"] for r in _children(store)}
    assert fps["frozen"] == frozen_fp and len(set(fps.values())) == 3  # never one leaderboard row
    tuned = [r for r in _children(store) if r.data.tags.get("facehash.pretrained.mode") == "fine-tune"]
    assert tuned[0].data.tags["facehash.pretrained.lr_mult"] == "0.1"
    assert tiny_plugin.CALLS["forward"] > 3  # fine-tuning runs the backbone in every step


def test_fine_tune_rate_and_frozen_features_in_the_assembled_run(tiny_plugin):
    from bench.api.pluginhost import default_host
    from bench.config.protocol import ProtocolConfig
    from bench.data.faces import TRAIN
    from bench.running.inputs import deep_inputs
    from bench.running.planning import plan_runs
    from bench.running.request import PartChoice, RunRequest
    from bench.training.assembly import build_optimizer, build_parts, rated_parts
    from bench.training.embeddings import FeatureTable

    host = default_host()
    protocol = ProtocolConfig(dataset="synthfaces", dataset_options={"identities": 5, "images_per_identity": 6,
                                                                     "val": 1, "query": 2})
    [tuned] = plan_runs(host, RunRequest(methods=["orthohash"], bits=[8], seeds=[0], protocol=protocol, parts=PartChoice(backbone="tiny-pretrained", backbone_mode="fine-tune")))
    assert tuned.config.backbone.name == "tiny-pretrained" and tuned.config.backbone.lr_mult == 0.1
    from bench.api.interfaces import BuildContext

    model, loss = build_parts(host, tuned.config, BuildContext(8, 5, tuned.data.image_shape))
    optimizer = build_optimizer(tuned.config.optimizer, *rated_parts(tuned.config, model, loss))
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    lr = tuned.config.optimizer.lr
    kernels = (model.backbone.conv.weight, model.backbone.fc.weight)
    assert [rates[id(p)] for p in kernels] == [pytest.approx(lr * 0.1)] * 2
    [frozen] = plan_runs(host, RunRequest(methods=["orthohash"], bits=[8], seeds=[0], protocol=protocol, parts=PartChoice(backbone="tiny-pretrained")))
    normaliser = host.normalisers.build(protocol.normalisation, frozen.data.images, frozen.data.split)
    inputs = deep_inputs(frozen, normaliser)
    x, _ = inputs.part(TRAIN)
    assert isinstance(inputs.backbone, FeatureTable) and x.shape[1:] == (16, 1, 1) and x.dtype == np.float32
    assert frozen.protocol_fingerprint != tuned.protocol_fingerprint


def test_bad_backbone_modes_are_one_line(cli, store, tiny_plugin):
    code, _, err = cli("run", "--method", "csq", "--bits", "8", "--backbone-mode", "frozen", "--tracking-uri", store, *TINY)
    assert code == 2 and "need a backbone" in err
    code, _, err = cli("run", "--method", "csq", "--bits", "8", "--backbone", "tiny-pretrained", "--backbone-mode",
                       "thawed", "--tracking-uri", store, *TINY)
    assert code == 2 and "use frozen" in err
    code, _, err = cli("run", "--method", "csq", "--bits", "8", "--backbone", "tiny-pretrained",
                       "--set", "backbone.lr_mult=0.5", "--tracking-uri", store, *TINY)
    assert code == 2 and "protocol.pretrained.lr_mult" in err


def test_a_backbone_reads_its_own_view_of_the_same_split(cli, store, tiny_plugin):
    """A factory annotated to return a PretrainedBackbone whose ``expects`` asks for 16 px
    images and the unit normaliser: its floor and a frozen and a fine-tuned deep run read
    that view (the network asserts it), tagged; the runs keep the protocol's split."""
    for extra in ([], ["--backbone", "tiny-16"], ["--backbone", "tiny-16", "--backbone-mode", "fine-tune"]):
        method = "csq" if extra else "tiny16-pca-itq"
        code, _, err = cli("run", "--method", method, "--bits", "8", "--epochs", "1", *extra,
                           "--tracking-uri", store, *TINY)
        assert code == 0, err
    runs = _children(store)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert run.data.tags["facehash.pretrained.input_size"] == "16"
        assert run.data.tags["facehash.input.normalisation"] == "unit"
    assert len({r.data.tags["facehash.split_checksum"] for r in runs}) == 1


def test_a_protocol_without_a_pretrained_backbone_dumps_and_hashes_as_before():
    """``pretrained`` is left out of a protocol's dumps while None (fingerprints of runs recorded
    before it existed stay), and a fitted run's fingerprint never includes it."""
    from bench.config.protocol import (
        PretrainedSpec,
        ProtocolConfig,
        evaluation_fingerprint,
        fingerprint,
    )

    plain = ProtocolConfig()
    frozen = ProtocolConfig(pretrained=PretrainedSpec(backbone="net"))
    assert "pretrained" not in plain.model_dump() and frozen.model_dump()["pretrained"]["mode"] == "frozen"
    assert fingerprint(plain, "abc") != fingerprint(frozen, "abc")
    assert evaluation_fingerprint(plain, "abc") == evaluation_fingerprint(frozen, "abc")
    assert fingerprint(plain, "abc", trained=False) == fingerprint(frozen, "abc", trained=False)
