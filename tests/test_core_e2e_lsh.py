"""The default job end to end: LSH on ORL, logged to MLflow as parent + child runs."""


import numpy as np
from mlflow.tracking import MlflowClient

from bench.evaluation.codes import unpack_codes


def test_lsh_run_logs_parent_children_metrics_and_codes(cli, store, tmp_path):
    code, out, err = cli("run", "--method", "lsh", "--bits", "12,24", "--tracking-uri", store)
    assert code == 0, err
    assert "Hamming retrieval results" in out
    client = MlflowClient(tracking_uri=store)
    [experiment] = [e for e in client.search_experiments() if e.name.startswith("facehash-orl-")]
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("facehash.kind") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == 2
    assert {r.info.run_name for r in children} == {"lsh-12b-s0", "lsh-24b-s0"}
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["facehash.protocol_fingerprint"] == parents[0].data.tags["facehash.protocol_fingerprint"]
        for metric in ("map", "precision_at_50", "precision_r2", "recall_r2"):
            assert 0.0 <= run.data.metrics[metric] <= 1.0
        assert run.data.params["protocol.dataset"] == "orl"
        assert run.data.params["method.center"] == "true"  # params are JSON
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"codes.npz", "config.yaml", "per_query_ap.npy"} <= names
        local = client.download_artifacts(run.info.run_id, "codes.npz", str(tmp_path))
        codes = np.load(local)
        bits = int(codes["bits"])
        gallery = unpack_codes(codes["gallery_codes"], bits)
        assert gallery.shape == (278, bits) and set(np.unique(gallery)) <= {-1, 1}
        assert codes["query_labels"].shape == (80,)
    maps = {r.info.run_name: r.data.metrics["map"] for r in children}
    assert maps["lsh-24b-s0"] > maps["lsh-12b-s0"]  # longer random codes approximate pixels better
