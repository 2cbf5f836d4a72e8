"""evaluate(): input checks, label handling, artifacts, and the harmonic-number helper."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.api.errors import BenchError
from bench.api.pluginhost import default_host
from bench.config.protocol import EvaluationSpec
from bench.evaluation import Evaluation, evaluate, save_evaluation_artifacts
from bench.evaluation.metrics import expected_ap_at, harmonic_diff
from bench.evaluation.plugin_metrics import registered_metrics


def test_harmonic_diff_against_exact_sums():
    for lo in [0, 1, 5, 63, 64, 65, 100, 1000, 123456]:
        for count in [0, 1, 2, 7, 64, 500, 5000]:
            exact = math.fsum(1.0 / (lo + j) for j in range(1, count + 1))
            got = float(harmonic_diff(lo, count))
            assert got == pytest.approx(exact, rel=1e-13, abs=1e-300), (lo, count)


def test_metric_keys_and_string_labels():
    rng = np.random.default_rng(0)
    gallery = rng.choice(np.array([-1, 1], dtype=np.int8), (30, 10))
    query = rng.choice(np.array([-1, 1], dtype=np.int8), (4, 10))
    spec = EvaluationSpec(precision_at=[5, 10], radius=3, map_at=[7])
    gl = np.array(["ann", "bob", "cy"])[rng.integers(0, 3, 30)]
    ql = np.array(["ann", "bob", "zed", "cy"])
    plugins = registered_metrics(default_host())
    ev = evaluate(query, ql, gallery, gl, spec, device="cpu", plugin_metrics=plugins)
    for key in ["map", "map_best", "map_worst", "map_stable", "map_legacy", "precision_at_5",
                "precision_at_10", "precision_r3", "recall_r3", "empty_r3",
                "queries_without_relevant", "map_at_7"]:
        assert key in ev.metrics
    assert ev.metrics["queries_without_relevant"] == 1.0
    assert ev.per_query_ap[2] == 0.0 and ev.per_query_ap.shape == (4,)
    same = evaluate(query, np.array([0, 1, 9, 2]), gallery, np.searchsorted(["ann", "bob", "cy"], gl),
                    spec, device="cpu", plugin_metrics=plugins)
    assert same.metrics == ev.metrics
    assert "map_legacy" not in evaluate(query, ql, gallery, gl, spec, device="cpu").metrics  # built-ins only


@pytest.mark.parametrize(("gallery_size", "ks"), [(40, []), (80, [50]), (278, [50, 100]), (600, [50, 100, 500])])
def test_default_precision_at_k_suits_the_gallery(gallery_size, ks):
    rng = np.random.default_rng(1)
    gallery = rng.choice(np.array([-1, 1], dtype=np.int8), (gallery_size, 8))
    ev = evaluate(gallery[:3], np.arange(3) % 2, gallery, np.arange(gallery_size) % 2, EvaluationSpec(), device="cpu")
    assert sorted(int(k[len("precision_at_"):]) for k in ev.metrics
                  if k.startswith("precision_at_") and k[len("precision_at_"):].isdigit()) == ks
    assert "precision_at_r" in ev.metrics  # suits any gallery


@pytest.mark.parametrize(
    "query, gallery, message",
    [
        (np.zeros((2, 4)), np.ones((3, 4)), r"only -1/\+1"),
        (np.ones((2, 4)), np.ones((3, 5)), "4 bits but gallery codes 5"),
        (np.ones((0, 4)), np.ones((3, 4)), "non-empty"),
        (np.ones(4), np.ones((3, 4)), "non-empty"),
    ],
)
def test_bad_codes_give_one_line_errors(query, gallery, message):
    with pytest.raises(BenchError, match=message):
        evaluate(query, np.zeros(len(query)), gallery, np.zeros(len(gallery)), device="cpu")


def test_label_count_mismatch():
    with pytest.raises(BenchError, match="one label per code"):
        evaluate(np.ones((2, 4)), np.zeros(3), np.ones((3, 4)), np.zeros(3), device="cpu")


def test_unknown_map_at_normalisation():
    with pytest.raises(ValueError, match="normalisation"):
        expected_ap_at(np.array([[1, 1]]), np.array([[1, 0]]), 1, "bogus")


def test_artifacts_round_trip(tmp_path):
    ev = Evaluation({"map": 0.5}, np.array([0.25, 0.75]), {"pr_precision": [1.0]},
                    {"ap": np.array([0.25, 0.75]), "ap_stable": np.array([0.2, 0.7])})
    paths = save_evaluation_artifacts(ev, tmp_path / "out")
    assert [p.name for p in paths] == ["per_query_ap.npy", "per_query.npz", "curves.json"]
    assert np.load(paths[0]).tolist() == [0.25, 0.75]
    assert np.load(paths[1])["ap_stable"].tolist() == [0.2, 0.7]
    assert json.loads(paths[2].read_text()) == {"pr_precision": [1.0]}
