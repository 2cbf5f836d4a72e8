"""``bench tune`` on a pretrained backbone (``--backbone``, ``--backbone-mode``, as ``bench
run`` takes them): its trials and final runs train on the network's features under the same
protocol fingerprint as ``bench run --backbone``; and a network trained partly on the dataset
a run is scored on (dlib's on FaceScrub) says so in the run's tags and in the leaderboard.
The stand-in network reads its own 16 px view of the data, so a trial (which holds no
queries) must read that view without the queries as well."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

TINY = ["--dataset", "synthfaces", "--set", "dataset.identities=5", "--set", "dataset.images_per_identity=6",
        "--set", "dataset.val=1", "--set", "dataset.query=2"]

PLUGIN = '''
import torch
from torch import nn
from bench import hookimpl
from bench.api.interfaces import BackboneInputs, PretrainedBackbone
from baselines.embedding import embedding_methods


class SeenNet(PretrainedBackbone):
    """A stand-in pretrained network: 16 px images, 16-D embeddings, "trained" on synthfaces."""

    expects = BackboneInputs(input_size=16, normalisation="unit")
    trained_on = ("synthfaces",)

    def __init__(self, ctx, width=4):
        super().__init__()
        self.conv = nn.Conv2d(ctx.input_shape[0], width, 3, stride=2)
        self.fc = nn.Linear(width, 16, bias=False)
        self.feature_dims = {"embedding": 16}

    def forward(self, x):
        assert x.shape[2:] == (16, 16)
        return {"embedding": self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))}


def build_seen(ctx, width=4) -> SeenNet:
    return SeenNet(ctx, width)


@hookimpl
def register_backbones(register):
    register("seen-net", build_seen)


@hookimpl
def register_methods(register):
    register("seen-pca-itq", embedding_methods("seen", "seen-net")["seen-pca-itq"])
'''


@pytest.fixture
def seen_plugin(plugin_site):
    from tests.conftest import install_plugin

    install_plugin(plugin_site, "seen-net", "seen_net", PLUGIN)


def _children(store: str):
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId")]


def test_tune_trains_on_the_pretrained_backbone_under_the_run_protocol(cli, store, seen_plugin):
    code, _, err = cli("run", "--method", "csq", "--bits", "8", "--epochs", "1", "--backbone", "seen-net",
                       "--tracking-uri", store, *TINY)
    assert code == 0, err
    [default] = _children(store)
    code, out, err = cli("tune", "--method", "csq", "--backbone", "seen-net", "--backbone-mode", "frozen",
                         "--trials", "2", "--epochs", "1", "--bits", "8", "--final-seeds", "0",
                         "--tracking-uri", store, *TINY)
    assert code == 0, err
    assert "2 finished trial(s)" in out
    tuned = [r for r in _children(store) if r.info.run_id != default.info.run_id]
    trials = [r for r in tuned if "facehash.tune.trial" in r.data.tags or "trial" in r.data.tags.get("mlflow.runName", "")]
    assert len(tuned) == 3 and len(trials) >= 2  # two trials and the final run
    fingerprint = default.data.tags["facehash.protocol_fingerprint"]
    for run in tuned:
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags["facehash.pretrained.backbone"] == "seen-net" and tags["facehash.pretrained.mode"] == "frozen"
        assert tags["facehash.pretrained.input_size"] == "16"  # the network's own view, without the queries
        assert tags["facehash.protocol_fingerprint"] == fingerprint
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--dataset", "synthfaces", "--tuned", "--format", "md")
    assert code == 0, err
    [row] = [line for line in out.splitlines() if line.startswith("| csq |")]
    assert row.split("|")[3].strip() == f"{default.data.metrics['map']:.4f} n=1"  # the default beside the tuned
    code, out, err = cli("tune", "--method", "csq", "--backbone", "seen-net", "--backbone-mode", "fine-tune",
                         "--trials", "1", "--epochs", "1", "--bits", "8", "--final-seeds", "0",
                         "--tracking-uri", store, *TINY)
    assert code == 0, err
    fine = [r for r in _children(store) if r.data.tags.get("facehash.pretrained.mode") == "fine-tune"]
    assert len(fine) == 2 and {r.data.tags["facehash.protocol_fingerprint"] for r in fine} != {fingerprint}
    code, _, err = cli("tune", "--method", "csq", "--backbone", "seen-net", "--backbone-mode", "thawed",
                       "--trials", "1", "--epochs", "1", "--bits", "8", "--tracking-uri", store, *TINY)
    assert code == 2 and "use frozen" in err and "\n" not in err.strip()


def test_a_run_on_data_the_network_was_trained_on_says_so(cli, store, seen_plugin):
    code, _, err = cli("run", "--method", "seen-pca-itq,lsh", "--bits", "8", "--tracking-uri", store, *TINY)
    assert code == 0, err
    code, _, err = cli("run", "--method", "csq", "--bits", "8", "--epochs", "1", "--backbone", "seen-net",
                       "--tracking-uri", store, *TINY)
    assert code == 0, err
    tags = {r.data.tags["facehash.method"]: r.data.tags for r in _children(store)}
    assert tags["seen-pca-itq"]["facehash.pretrained.trained_on"] == "synthfaces"
    assert tags["csq"]["facehash.pretrained.trained_on"] == "synthfaces"
    assert "facehash.pretrained.trained_on" not in tags["lsh"]  # no network, nothing seen
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--dataset", "synthfaces", "--format", "md")
    assert code == 0, err
    note = "the pretrained network seen-net was trained partly on synthfaces"
    assert note in err and note in out  # among the notes and under the table
    flagged = next(line for line in out.splitlines() if note in line)
    assert set(flagged.split(":")[0].lstrip("- ").split(", ")) == {"csq", "seen-pca-itq"}  # not lsh


def test_dlib_network_declares_facescrub():
    from bench.api.pluginhost import default_host
    from bench.running.views import trained_on

    host = default_host()
    assert trained_on(host, "dlib-resnet", "facescrub")
    assert not trained_on(host, "dlib-resnet", "orl") and not trained_on(host, "vgg16-trunc", "facescrub")
