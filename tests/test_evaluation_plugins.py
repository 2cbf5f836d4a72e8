"""Metrics and normalisers are plugins: the built-in ones (``map_legacy``, ``legacy-ddh``) come
through the hooks like a third-party plugin's, which ``bench run`` and ``bench eval`` use."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.pluginhost import default_host
from bench.data.faces import QUERY, TRAIN
from bench.evaluation import evaluate
from bench.evaluation.codes import unpack_codes
from bench.evaluation.plugin_metrics import registered_metrics
from bench.tracking.reading import StoreReader

from conftest import install_plugin

PLUGIN = '''
from bench import hookimpl
from bench.data.preprocess import Normaliser

PARTS = []


class Halved(Normaliser):
    """Pixels / 510 (a test normaliser)."""

    def __init__(self, images, split):
        super().__init__("halved", images, split)

    def fit(self, images, split):
        return {}

    def transform(self, x, part):
        PARTS.append(part)
        return x.div_(510.0)


def ones_share(codes):
    """The share of +1 bits in each query code."""
    return (codes.query > 0).mean(axis=1)


@hookimpl
def register_metrics(register):
    register("ones_share", ones_share)


@hookimpl
def register_normalisers(register):
    register("halved", Halved)
'''


def test_builtin_metric_and_normalisers_are_registered_plugins(cli):
    host = default_host()
    assert host.metrics.names() == [
        "map_legacy", "map_legacy_argsort", "precision_at_50_legacy", "precision_at_50_legacy_argsort",
        "precision_r2_legacy", "recall_r2_legacy",
    ]
    assert host.normalisers.names() == ["caffe-mean-image", "channel-mean-std", "dlib-rgb", "legacy-ddh", "unit"]
    code, out, err = cli("plugins")
    assert code == 0, err
    rows = {tuple(cell.strip() for cell in line.split("│")[1:3]) for line in out.splitlines() if "│" in line}
    assert {("metric", "map_legacy"), ("normaliser", "legacy-ddh"), ("normaliser", "unit")} <= rows


def test_evaluate_adds_the_metrics_it_is_given_under_their_names():
    rng = np.random.default_rng(0)
    gallery, query = rng.choice([-1, 1], (20, 9)), rng.choice([-1, 1], (3, 9))
    gl, ql = rng.integers(0, 3, 20), rng.integers(0, 3, 3)
    seen = []

    def constant(codes):
        seen.append((codes.bits, codes.query.shape, codes.gallery.shape, codes.device))
        return np.array([0.0, 0.5, 1.0])

    ev = evaluate(query, ql, gallery, gl, device="cpu", plugin_metrics={"map_const": constant, "spread": constant})
    assert seen == [(9, (3, 9), (20, 9), "cpu")] * 2
    assert ev.metrics["map_const"] == ev.metrics["spread"] == 0.5
    assert ev.per_query["ap_const"].tolist() == ev.per_query["spread"].tolist() == [0.0, 0.5, 1.0]
    assert "map_legacy" not in ev.metrics  # only what was given
    assert "map_legacy" not in evaluate(query, ql, gallery, gl, device="cpu").metrics  # default: built-ins only
    assert "map_legacy" in evaluate(query, ql, gallery, gl, device="cpu",
                                    plugin_metrics=registered_metrics(default_host())).metrics


def test_a_third_party_metric_and_normaliser_serve_bench_run_and_bench_eval(plugin_site, cli, store):
    install_plugin(plugin_site, "eval-plugin", "eval_plugin", PLUGIN)
    code, _, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", store,
                       "--set", "protocol.normalisation=halved")
    assert code == 0, err
    import eval_plugin

    assert set(eval_plugin.PARTS) == {TRAIN, QUERY}  # the training split (fit, gallery) and the queries
    reader = StoreReader(store)
    [run_id] = reader.finished_runs(tags={"facehash.method": "lsh"})["run_id"]
    run = reader.run(run_id)
    assert run.data.params["protocol.normalisation"] == "halved"
    folder = plugin_site.parent / "codes"
    with np.load(reader.download(run_id, "codes.npz", folder)) as stored:
        query = unpack_codes(stored["query_codes"], 8)
    assert run.data.metrics["ones_share"] == pytest.approx((query > 0).mean(), abs=1e-12)
    assert "map_legacy" in run.data.metrics

    code, out, err = cli("eval", run_id, "--tracking-uri", store, "--device", "cpu", "--metric", "ones_share")
    assert code == 0, err
    assert "ones_share" in out and "map_legacy" not in out


def test_an_unknown_normalisation_fails_at_planning_and_names_the_known_ones(cli, tmp_path):
    store = f"sqlite:///{tmp_path / 'never.db'}"
    code, _, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", store,
                       "--set", "protocol.normalisation=legacy-dhh")
    assert code == 2
    assert "unknown normaliser 'legacy-dhh'; known: caffe-mean-image, channel-mean-std, dlib-rgb, legacy-ddh, unit (did you mean 'legacy-ddh'?)" in err
    assert not (tmp_path / "never.db").exists()
