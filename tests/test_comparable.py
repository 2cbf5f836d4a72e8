"""Comparable runs stay comparable (issue 17, item 13): a fitted method's protocol
fingerprint leaves out the training budget and reports place it beside deep runs of any
budget; ``bench data info`` reports the split checksum ``bench run`` uses; checkpoint
selection that the data cannot serve is refused when asked, and tagged when defaulted."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import sweepkit

from bench.config.protocol import ProtocolConfig
from bench.data.faces import QUERY, TRAIN, FaceData
from bench.reports import query
from bench.running.planning import plan_runs
from bench.running.request import RunRequest
from bench.tracking import tags as T


def fingerprints(epochs: int) -> dict[str, str]:
    runs = plan_runs(sweepkit.host(), RunRequest(methods=["lsh", "pca-itq", "sweep-tiny"], bits=[8], seeds=[0], protocol=ProtocolConfig(epochs=epochs), device="cpu"))
    return {r.spec.method: r.protocol_fingerprint for r in runs} | {
        f"eval:{r.spec.method}": r.tags[T.EVAL_FINGERPRINT] for r in runs}


def test_the_budget_enters_the_fingerprint_of_trained_methods_only():
    short, long = fingerprints(1), fingerprints(7)
    assert short["lsh"] == long["lsh"] and short["pca-itq"] == long["pca-itq"]
    assert short["sweep-tiny"] != long["sweep-tiny"]
    assert short["lsh"] == short["eval:sweep-tiny"] == long["eval:sweep-tiny"]  # the shared part
    assert short["lsh"] != short["sweep-tiny"]


def frame(rows: list[tuple[str, str, str | None, str, int]]) -> pd.DataFrame:
    """Runs as the store reader lays them out: (method, fingerprint, eval fingerprint, kind, start)."""
    return pd.DataFrame({
        query.METHOD: [r[0] for r in rows], query.FP_TAG: [r[1] for r in rows],
        query.EVAL_TAG: [r[2] for r in rows], query.KIND: [r[3] for r in rows],
        query.DATASET: "orl", query.PARENT: "p", "start_time": pd.to_datetime([r[4] for r in rows], unit="s", utc=True),
        T.column(T.BITS): "8", T.column(T.SEED): "0", T.column(T.CONFIG_HASH): [f"c{i}" for i in range(len(rows))],
    })


RUNS = [("lsh", "E", "E", "fitted", 1), ("pca-itq", "E", "E", "fitted", 2),
        ("dsh", "D10", "E", "deep", 3), ("dcbh", "D50", "E", "deep", 4),
        ("lsh", "F", "F", "fitted", 5),  # another split: stands alone
        ("old-fitted", "OLD", None, "fitted", 0)]  # a run from before the evaluation tag


def test_the_leaderboard_places_fitted_runs_beside_deep_runs_of_any_budget(monkeypatch):
    df = frame(RUNS)
    found = query.list_fingerprints(df)
    assert dict(zip(found["fingerprint"], found["methods"], strict=True)) == {
        "F": "lsh", "D50": "dcbh,lsh,pca-itq", "D10": "dsh,lsh,pca-itq", "OLD": "old-fitted"}
    monkeypatch.setattr(query, "search_children", lambda *a: df)
    for fp, methods in (("D10", ["dsh", "lsh", "pca-itq"]), ("D50", ["dcbh", "lsh", "pca-itq"]), ("F", ["lsh"])):
        runset = query.load_runs("sqlite:///unused.db", protocol=fp)
        assert sorted(runset.runs[query.METHOD]) == methods
        assert any("leaves out the training budget" in n for n in runset.notes) == (fp != "F")


def test_data_info_reports_the_checksum_bench_run_uses(cli, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "faces28.npz"
    np.savez(path, x=rng.integers(0, 256, (24, 28, 28), dtype=np.uint8), y=np.repeat(np.arange(4), 6))
    code, info, _ = cli("data", "info", "arrays", "--data-root", str(path))
    assert code == 0
    [shown] = re.findall(r"split checksum\s*│\s*([0-9a-f]{16}) \(at 32 x 32", info)
    code, out, err = cli("run", "--method", "lsh", "--bits", "8", "--dataset", "arrays", "--data-root", str(path),
                         "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--output", str(tmp_path / "out"))
    assert code == 0, err
    assert f"split {shown})" in out.replace("\n", "")
    code, native, _ = cli("data", "info", "arrays", "--data-root", str(path), "--input-size", "28")
    assert shown not in native and "(at 28 x 28" in native


def test_a_default_val_map_selection_without_validation_data_is_tagged_as_last():
    from bench.running.planning import selection_tags

    data = FaceData("d", np.zeros((4, 3, 8, 8), np.uint8), np.array([0, 0, 1, 1]),
                    np.array([TRAIN, QUERY, TRAIN, QUERY], np.int8), ["a", "b"])
    config = sweepkit.TinyConfig()
    assert selection_tags(config.model_copy(update={"training": config.training.model_copy(
        update={"selection": "val_map"})}), data) == {T.SELECTION_APPLIED: "last (val_map asked, no validation split)"}
    assert selection_tags(config, data) == {T.SELECTION_APPLIED: "last"}


def test_bench_run_says_when_a_val_map_method_keeps_the_last_epoch(cli, tmp_path):
    code, out, err = cli("run", "--method", "orthohash", "--bits", "12", "--epochs", "1", "--set", "dataset.val=0",
                         "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--output", str(tmp_path / "out"))
    assert code == 0, err
    assert ("warning: orthohash selects its checkpoint on validation mAP, but dataset 'orl' has no validation "
            "split: it keeps the last epoch") in " ".join(err.split())
    code, _, err = cli("run", "--method", "orthohash", "--bits", "12", "--epochs", "1",
                       "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--output", str(tmp_path / "out"))
    assert code == 0 and "validation split" not in err, err  # with ORL's default validation images: silent
