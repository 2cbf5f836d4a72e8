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
