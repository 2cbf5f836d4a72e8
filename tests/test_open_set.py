"""The open-set protocol (identity-disjoint partition) and repeated splits: disjointness, a
partition identical across runs and processes, fingerprints, and the leaderboard's pooling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from bench.api.errors import BenchError
from bench.api.pluginhost import default_host
from bench.config.protocol import OpenSetSpec, ProtocolConfig, fingerprint
from bench.data.faces import GALLERY, QUERY, TRAIN, VAL
from bench.data.loading import dataset_for, dataset_options
from bench.data.openset import open_set_split
from bench.running.planning import plan_runs
from bench.running.request import RunRequest

SYNTH = {"identities": 10, "images_per_identity": 8, "size": 16}


def protocol(split_seed: int = 0, **open_set) -> ProtocolConfig:
    return ProtocolConfig(dataset="synthfaces", dataset_options=SYNTH, input_size=16, split="open-set",
                          split_seed=split_seed, open_set=OpenSetSpec(**open_set))


def sides(data):
    """Identity names of the training side (train, val) and the retrieval side (gallery, query)."""
    names = np.asarray(data.identities)
    return (set(names[data.labels[np.isin(data.split, (TRAIN, VAL))]]),
            set(names[data.labels[np.isin(data.split, (GALLERY, QUERY))]]))


def partition_text(split_seed: int) -> str:
    data = dataset_for(default_host(), protocol(split_seed), None)
    return json.dumps([data.checksum(), data.meta["open_set"]["retrieval_identities"]])


def test_training_and_retrieval_identities_are_disjoint_and_sized():
    data = dataset_for(default_host(), protocol(0), None)
    train, retrieval = sides(data)
    assert not train & retrieval and len(train) == 7 and len(retrieval) == 3  # 30% of 10
    assert train | retrieval == set(data.identities)
    assert data.train_classes == 7 and set(data.labels[data.split == TRAIN]) == set(range(7))
    for label in range(10):
        parts = data.split[data.labels == label]
        expected = {VAL: 1, TRAIN: 7} if label < 7 else {QUERY: 2, GALLERY: 6}
        assert {int(k): int(np.sum(parts == k)) for k in np.unique(parts)} == expected
    closed = dataset_for(default_host(), protocol(0).model_copy(update={"split": "closed-set"}), None)
    assert closed.gallery_part == TRAIN and data.gallery_part == GALLERY  # guard: the closed set shares identities
    assert sides(closed)[0] == sides(closed)[1]


def test_the_partition_is_identical_across_runs_and_processes_for_a_split_seed():
    here = partition_text(2)
    assert partition_text(2) == here  # again in this process
    code = "from tests.test_open_set import partition_text; print(partition_text(2)); print(partition_text(3))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__))).stdout.splitlines()
    assert out[0] == here and out[1] != here  # another split seed draws another partition


def test_split_seeds_share_the_fingerprint_but_not_the_split_checksum():
    runs = plan_runs(default_host(), RunRequest(methods=["lsh"], bits=[8], seeds=[0], protocol=protocol(), split_seeds=[0, 1], device="cpu"))
    assert [r.spec.name for r in runs] == ["lsh-8b-s0-open0", "lsh-8b-s0-open1"]
    assert runs[0].protocol_fingerprint == runs[1].protocol_fingerprint
    assert runs[0].checksum != runs[1].checksum
    assert runs[0].tags["facehash.split_seed"] == "0" and runs[1].tags["facehash.split"] == "open-set"
    closed = ProtocolConfig(dataset="synthfaces", dataset_options=SYNTH, input_size=16)
    assert fingerprint(closed, runs[0].data.pool_checksum()) != runs[0].protocol_fingerprint
    fixed = SimpleNamespace(datasets=SimpleNamespace(  # a dataset plugin whose split is fixed
        resolve=lambda name: [SimpleNamespace(factory=lambda data_root=None, val=1: None)]))
    with pytest.raises(BenchError, match="no split_seed option"):
        dataset_options(fixed, closed.model_copy(update={"split_seed": 1}))
    assert dataset_options(default_host(), closed.model_copy(update={"split_seed": 1}))["split_seed"] == 1
    with pytest.raises(BenchError, match="retrieval identities of 10"):
        open_set_split(runs[0].data, OpenSetSpec(retrieval_identities=10), 0)


def test_split_seeds_give_one_run_each_and_the_leaderboard_pools_them(cli, store):
    code, out, err = cli("run", "--method", "lsh", "--split-seeds", "0,1,2", "--bits", "12", "--tracking-uri", store)
    assert code == 0, err
    client = MlflowClient(tracking_uri=store)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
            if r.data.tags.get("mlflow.parentRunId")]
    assert sorted(r.info.run_name for r in runs) == ["lsh-12b-s0", "lsh-12b-s0-split1", "lsh-12b-s0-split2"]
    assert len({r.data.tags["facehash.split_checksum"] for r in runs}) == 3
    assert len({r.data.tags["facehash.protocol_fingerprint"] for r in runs}) == 1
    for r in runs:
        assert {"tar_at_far_1e-3", "tar_at_far_1e-2", "eer", "roc_auc", "rank1", "rank5"} <= set(r.data.metrics)
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--format", "json", "--no-log")
    assert code == 0, err
    [cell] = json.loads(out)["cells"]
    maps = [r.data.metrics["map"] for r in runs]
    assert cell["n_seeds"] == 3 and cell["n_splits"] == 3 and cell["splits"] == "0,1,2"
    assert abs(cell["mean"] - np.mean(maps)) < 1e-12 and abs(cell["std"] - np.std(maps, ddof=1)) < 1e-12
    assert min(maps) <= cell["ci_low"] <= cell["ci_high"] <= max(maps)  # bootstrap over the 3 runs
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--format", "json", "--no-log", "--metric", "eer")
    [cell] = json.loads(out)["cells"]
    assert code == 0 and abs(cell["mean"] - np.mean([r.data.metrics["eer"] for r in runs])) < 1e-12


def test_the_paired_test_over_splits_pairs_runs_by_split_seed_and_seed():
    import pandas as pd

    from bench.reports.stats import paired_signflip_test
    from bench.reports.table import add_uncertainty

    base = [0.30, 0.45, 0.38, 0.50]  # the split moves both methods alike
    values = {f"r{i}": v for i, v in enumerate(base)} | {f"b{i}": v + 0.02 for i, v in enumerate(base)}
    cells = pd.DataFrame([
        {"variant": "ref", "method": "ref", "variant_key": "ref:1", "bits": 12, "n_splits": 4,
         "run_ids": "r0,r1,r2,r3", "run_keys": "0:0,1:0,2:0,3:0", "mean": np.mean(base)},
        {"variant": "b", "method": "b", "variant_key": "b:1", "bits": 12, "n_splits": 4,  # listed in another order
         "run_ids": "b3,b2,b1,b0", "run_keys": "3:0,2:0,1:0,0:0", "mean": np.mean(base) + 0.02},
    ]).assign(ci_low=np.nan, ci_high=np.nan, queries=0, p_value=np.nan, p_holm=np.nan, vs_reference="")
    out = add_uncertainty(cells, {}, "ref", resamples=2000, run_values=values)
    assert abs(out.loc[1, "p_value"] - 2 / 16) < 0.02  # 4 equal positive differences: exact p = 2/2^4
    assert min(base) + 0.02 <= out.loc[1, "ci_low"] <= out.loc[1, "ci_high"] <= max(base) + 0.02
    listed = paired_signflip_test(np.array([values[f"b{i}"] for i in (3, 2, 1, 0)]), np.array(base), 10_000)
    assert listed > 0.5  # guard: pairing in listed order (other splits together) loses the difference
