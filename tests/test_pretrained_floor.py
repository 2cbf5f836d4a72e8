"""The training-free floors on frozen pretrained features (``timm-pca-itq``,
``timm-pca-sign``), with a small randomly initialised timm model saved to a file:
their codes equal PCA-ITQ / PCA-sign fitted on features computed independently with timm;
without weights a run stops at once with one line and writes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient

from baselines.itq import PCAITQ, PCASign
from baselines.pretrained import PretrainedITQ, PretrainedSign
from bench.api.errors import BenchError
from plugins.backbones import frozen

MODEL = "test_resnet"  # timm's tiny test network (372k parameters)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    import timm

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / f"{MODEL}.pth"
    torch.save(timm.create_model(MODEL, num_classes=0).state_dict(), path)
    return path


def timm_features(path: Path, images: np.ndarray, size: int) -> np.ndarray:
    """The independent path: timm's model, the saved state dict, a plain forward pass."""
    import timm

    model = timm.create_model(MODEL, num_classes=0)
    model.load_state_dict(torch.load(path))
    x = F.interpolate(torch.from_numpy(images), size=(size, size), mode="bilinear", align_corners=False)
    with torch.no_grad():
        return model.eval()(x).numpy()


@pytest.mark.parametrize(("method", "floor"), [(PretrainedITQ(), PCAITQ()), (PretrainedSign(), PCASign())])
def test_codes_equal_the_floor_on_independent_timm_features(weights, method, floor):
    rng = np.random.default_rng(0)
    train, query = (rng.standard_normal((n, 3, 16, 16)).astype(np.float32) for n in (24, 6))
    labels = np.repeat(np.arange(6), 4)
    config = method.Config(backbone={"name": f"timm:{MODEL}", "weights": str(weights), "input_size": 24})
    config = method.resolve(config)
    encode = method.fit(train, labels, 8, 0, config)
    ref_encode = floor.fit(timm_features(weights, train, 24), labels, 8, 0, config)
    for x in (train, query):
        np.testing.assert_allclose(encode(x), ref_encode(timm_features(weights, x, 24)), atol=1e-4)
    assert method.tags(config)["pretrained.weights_sha256"] == __import__("hashlib").sha256(weights.read_bytes()).hexdigest()


def test_without_weights_it_fails_fast_in_one_line(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as offline; no retry loop either way
    start = time.monotonic()
    with pytest.raises(BenchError, match=r"no pretrained weights.*--set backbone\.weights=PATH") as err:
        frozen.check_weights(f"timm:{MODEL}", None)
    assert time.monotonic() - start < 10 and "\n" not in str(err.value)
    with pytest.raises(BenchError, match="does not exist"):
        frozen.check_weights(f"timm:{MODEL}", str(tmp_path / "absent.pth"))
    with pytest.raises(BenchError, match="take a timm model"):
        frozen.check_weights("vgg16-trunc", None)


def test_floor_on_orl_through_the_cli(cli, store, weights, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    code, _, err = cli("run", "--method", "timm-pca-itq", "--bits", "12", "--backbone", f"timm:{MODEL}",
                       "--tracking-uri", store)
    assert code == 2 and "--set backbone.weights=PATH" in err and not (tmp_path / "mlflow.db").exists()
    code, out, err = cli("run", "--method", "timm-pca-sign", "--bits", "12", "--backbone", f"timm:{MODEL}",
                         "--set", f"backbone.weights={weights}", "--set", "backbone.input_size=32",
                         "--tracking-uri", store)
    assert code == 0, err
    [run] = [r for r in MlflowClient(tracking_uri=store).search_runs(
        [e.experiment_id for e in MlflowClient(tracking_uri=store).search_experiments()])
        if r.data.tags.get("mlflow.parentRunId")]
    assert run.info.status == "FINISHED" and run.data.tags["facehash.pretrained.backbone"] == f"timm:{MODEL}"
    assert 0.0 < run.data.metrics["map"] <= 1.0
