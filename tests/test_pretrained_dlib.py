"""dlib's network behind the harness's pretrained-backbone paths, on a small copy of ORL (the
originals of four people; four of their images have no face dlib's detector finds): the
float top line and the ITQ floor on its embeddings in one table, with the bytes per face;
a frozen deep run; both tagged with the backbone, its mode and the alignment fallback count."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from plugins.datasets.orl import orl_root

pytest.importorskip("dlib")
PICKED = {"s1": range(1, 7), "s2": range(1, 7), "s33": range(1, 7), "s34": range(1, 7)}
FALLBACKS = "4"  # measured: s1/2, s33/2, s33/4 (tests/test_face_align.py) and one more of these 24


@pytest.fixture
def small_orl(tmp_path: Path) -> Path:
    root = tmp_path / "orl"
    for subject, numbers in PICKED.items():
        (root / subject).mkdir(parents=True)
        for n in numbers:
            shutil.copy(orl_root() / subject / f"{n}.pgm", root / subject / f"{n}.pgm")
    return root


@pytest.mark.slow
def test_dlib_top_line_floor_and_frozen_run_on_orl(cli, store, small_orl):
    common = ["--data-root", str(small_orl), "--tracking-uri", store]
    code, out, err = cli("run", "--method", "dlib-float,dlib-pca-itq", "--bits", "8,12", *common)
    assert code == 0, err
    assert "dlib-float" in out and "dlib-pca-itq" in out and "B/face" in out and "512" in out
    code, out, err = cli("run", "--method", "csq", "--backbone", "dlib-resnet", "--bits", "12", "--epochs", "1", *common)
    assert code == 0, err
    client = MlflowClient(tracking_uri=store)
    runs = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
            if r.data.tags.get("mlflow.parentRunId")]
    assert len(runs) == 5 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        tags = run.data.tags
        assert tags["facehash.pretrained.backbone"] == "dlib-resnet" and tags["facehash.pretrained.mode"] == "frozen"
        assert tags["facehash.data.alignment.fallback"] == FALLBACKS
        assert tags["facehash.input.normalisation"] == "dlib-rgb" and tags["facehash.pretrained.input_size"] == "150"
    top = [r.data.metrics for r in runs if r.data.tags["facehash.method"] == "dlib-float"]
    assert top[0]["bytes_per_face"] == 512.0 and top[0]["map"] > 0.9  # the network separates four people


def test_the_pretrained_page_sweep_and_tune_on_orl(cli, store, small_orl, tmp_path):
    """docs/pretrained.md's commands on the small copy of ORL: its committed sweep file (its
    methods cut to the top line, one floor and one deep method; one code length, one epoch)
    runs the deep method frozen on the network through ``protocol.pretrained``, named as
    ``--backbone`` names it; ``bench tune --backbone dlib-resnet`` tunes it under the same
    protocol fingerprint; the leaderboard puts them in one table."""
    import yaml

    sweep = yaml.safe_load((Path(__file__).parents[1] / "docs" / "pretrained-orl.yaml").read_text())
    assert sweep["overrides"]["protocol.pretrained.backbone"] == "dlib-resnet"
    sweep.update(methods=["dlib-float", "dlib-pca-itq", "csq"], bits=[12], seeds=[0], data_root=str(small_orl))
    sweep["overrides"]["protocol.epochs"] = 1
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    code, _, err = cli("sweep", str(tmp_path / "sweep.yaml"), "--tracking-uri", store)
    assert code == 0, err
    code, out, err = cli("tune", "--method", "csq", "--backbone", "dlib-resnet", "--backbone-mode", "frozen",
                         "--bits", "12", "--epochs", "1", "--standard", "harness-standard", "--trials", "1",
                         "--final-seeds", "0", "--data-root", str(small_orl), "--tracking-uri", store)
    assert code == 0, err
    client = MlflowClient(tracking_uri=store)
    runs = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
            if r.data.tags.get("mlflow.parentRunId")]
    deep = [r for r in runs if r.data.tags["facehash.method"] == "csq"]
    assert len(deep) == 3 and all(r.info.status == "FINISHED" for r in runs)  # the sweep's, a trial, the final
    assert len({r.data.tags["facehash.protocol_fingerprint"] for r in deep}) == 1
    for run in deep:
        assert run.data.tags["facehash.pretrained.mode"] == "frozen"
        assert run.data.tags["facehash.data.alignment.fallback"] == FALLBACKS
    sweep_run = next(r for r in deep if r.data.tags["mlflow.runName"] == "csq[backbone=dlib-resnet,backbone_mode=frozen]-12b-s0")
    assert "facehash.pretrained.trained_on" not in sweep_run.data.tags  # ORL is not in dlib's training data
    code, out, err = cli("leaderboard", "--tracking-uri", store, "--dataset", "orl", "--format", "md",
                         "--reference", "dlib-pca-itq")
    assert code == 0, err
    rows = {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")}
    assert {"dlib-float", "dlib-pca-itq"} <= rows and any(row.startswith("csq") for row in rows)
