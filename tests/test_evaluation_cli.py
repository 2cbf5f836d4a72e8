"""``bench eval RUN_ID``: re-evaluation of a stored run, logged back to it."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.errors import BenchError
from bench.api.pluginhost import default_host
from bench.cli.eval import spec_for
from bench.config.protocol import EvaluationSpec, ProtocolConfig
from bench.evaluation import evaluate
from bench.evaluation.codes import pack_codes
from bench.evaluation.plugin_metrics import registered_metrics
from bench.tracking.client import Tracker, flatten


def finished_run(uri: str, folder, with_codes: bool = True) -> tuple[str, tuple]:
    rng = np.random.default_rng(0)
    gallery = rng.choice(np.array([-1, 1], dtype=np.int8), (40, 12))
    query = rng.choice(np.array([-1, 1], dtype=np.int8), (6, 12))
    gl, ql = rng.integers(0, 4, 40), rng.integers(0, 4, 6)
    tracker = Tracker(uri)
    run_id = tracker.start_run(tracker.experiment("eval-test"), "lsh-12b-s0", {})
    protocol = ProtocolConfig(evaluation=EvaluationSpec(precision_at=[5], radius=1))
    tracker.log_params(run_id, flatten({"protocol": protocol.model_dump(mode="json"), "bits": 12}))
    tracker.log_metrics(run_id, {"map": 0.123})
    folder.mkdir()
    if with_codes:
        np.savez_compressed(folder / "codes.npz", gallery_codes=pack_codes(gallery), query_codes=pack_codes(query),
                            gallery_labels=gl, query_labels=ql, bits=np.int64(12))
        tracker.log_artifacts(run_id, folder)
    tracker.end(run_id)
    return run_id, (query, ql, gallery, gl, protocol.evaluation)


def test_eval_logs_recomputed_metrics_to_the_run_and_errors(cli, store, tmp_path):
    run_id, (query, ql, gallery, gl, spec) = finished_run(store, tmp_path / "art")
    code, out, err = cli("eval", run_id, "--tracking-uri", store, "--device", "cpu")
    assert code == 0, err
    expected = evaluate(query, ql, gallery, gl, spec, device="cpu",
                        plugin_metrics=registered_metrics(default_host(), opt_in_metrics=spec.opt_in_metrics)).metrics
    logged = Tracker(store).client.get_run(run_id).data.metrics
    for key in ("map", "map_stable", "map_legacy", "precision_at_5", "precision_r1", "empty_r1"):
        assert logged[key] == pytest.approx(expected[key], abs=1e-12)
    assert "0.1230" in out  # the value logged before is shown next to the new one
    artifacts = {a.path for a in Tracker(store).client.list_artifacts(run_id)}
    assert {"per_query_ap.npy", "curves.json", "codes.npz"} <= artifacts

    code, out, err = cli("eval", run_id, "--tracking-uri", store, "--device", "cpu",
                         "--metric", "map_at_3,precision_r2")
    assert code == 0, err
    again = evaluate(query, ql, gallery, gl, spec.model_copy(update={"map_at": [3], "radius": 2}),
                     device="cpu").metrics
    logged = Tracker(store).client.get_run(run_id).data.metrics
    assert logged["map_at_3"] == pytest.approx(again["map_at_3"], abs=1e-12)
    assert logged["precision_r2"] == pytest.approx(again["precision_r2"], abs=1e-12)

    # one-line errors (same store: creating an MLflow store is the slow part of this test)
    code, _, err = cli("eval", "0" * 32, "--tracking-uri", store)
    assert code == 2 and "no run" in err
    bare_id, _ = finished_run(store, tmp_path / "bare", with_codes=False)
    code, _, err = cli("eval", bare_id, "--tracking-uri", store)
    assert code == 2 and "no codes.npz artifact" in err


def test_metric_names_extend_the_spec_or_fail():
    spec = spec_for({"protocol.evaluation.map_at": "[]", "protocol.evaluation.radius": "2"},
                    ["recall_r3", "map_at_10", "map_legacy"])
    assert spec.radius == 3 and spec.map_at == [10]
    with pytest.raises(BenchError, match="--metric mapp: unknown"):
        spec_for({}, ["mapp"])
    with pytest.raises(BenchError, match="one Hamming radius"):
        spec_for({}, ["precision_r1", "recall_r2"])
