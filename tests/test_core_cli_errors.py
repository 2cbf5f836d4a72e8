"""Bad input: one line, exit code 2, nothing written to the tracking store."""

from pathlib import Path

import pytest


def db_of(store: str) -> Path:
    return Path(store[len("sqlite:///"):])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--method", "lhs"], "unknown method 'lhs'; known: "),
        (["--method", "lsh", "--dataset", "orll"], "unknown dataset 'orll'; known: "),
        (["--method", "lsh", "--bits", "12,0"], "--bits: '0' is not a positive integer"),
        (["--method", "lsh", "--bits", "12,x"], "--bits: 'x' is not a positive integer"),
        (["--method", "lsh", "--set", "centre=false"], "--set: unknown key 'centre' for method 'lsh'; known keys: center"),
        (["--method", "lsh", "--set", "dataset.sizee=8"], "unknown option 'sizee' for dataset 'orl'"),
        (["--method", "lsh", "--backbone", "vgg16-trunc"], "not a deep method"),
        (["--method", "lsh", "--device", "tpu"], "--device 'tpu': use auto, cpu or cuda"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, store, args, expected):
    code, _, err = cli("run", *args, "--tracking-uri", store)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert not db_of(store).exists()


def test_unknown_method_suggests_the_closest(cli, store):
    _, _, err = cli("run", "--method", "lhs", "--tracking-uri", store)
    assert "(did you mean 'lsh'?)" in err


def test_unknown_backbone_lists_known(cli, store, plugin_site):
    from conftest import ROOT, install_plugin

    install_plugin(plugin_site, "minimal-plugin", "minimal_plugin",
                   (ROOT / "examples" / "minimal_plugin.py").read_text())
    code, _, err = cli("run", "--method", "tiny-hash", "--backbone", "pixel-mpl", "--tracking-uri", store)
    assert code == 2 and "unknown backbone 'pixel-mpl'; known: " in err and "did you mean 'pixel-mlp'" in err
    assert not db_of(store).exists()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:9/", "is unreachable"),
        ("sqlite:////nonexistent-folder/x/mlflow.db", "does not exist"),
        ("./mlruns", "MLflow 3 refuses file stores"),
    ],
)
def test_unusable_tracking_uri_is_one_line_exit_2(cli, uri, expected, tmp_path):
    code, _, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", uri)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.glob("*.db")) and not (tmp_path / "mlruns").exists()
