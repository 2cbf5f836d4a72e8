"""Shared fixtures: a temporary MLflow store, in-process CLI runs, a third-party plugin
installed as a real distribution (a ``.dist-info`` folder on ``sys.path``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _private_dataset_cache(tmp_path_factory):
    """Tests never write to the user's dataset cache."""
    folder = tmp_path_factory.mktemp("dataset-cache")
    previous = os.environ.get("FACEHASH_BENCH_CACHE")
    os.environ["FACEHASH_BENCH_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("FACEHASH_BENCH_CACHE", None)
    else:
        os.environ["FACEHASH_BENCH_CACHE"] = previous


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A tracking URI for a fresh SQLite store (created on first use)."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def fresh_host():
    """Forget the cached plugin host before and after a test that changes plugins."""
    from bench.api.pluginhost import default_host

    default_host.cache_clear()
    yield
    default_host.cache_clear()


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run ``bench`` in process; returns (exit code, stdout, stderr)."""
    from bench.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def install_plugin(site: Path, dist: str, module: str, source: str) -> None:
    """Write ``module.py`` and a ``dist-info`` whose entry point registers it in ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[facehash_bench]\n{module} = {module}\n")


@pytest.fixture
def plugin_site(tmp_path, monkeypatch, fresh_host):
    """A site folder on sys.path (and PYTHONPATH, for subprocesses) for throwaway plugins."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    yield site
    for name in list(sys.modules):
        module = sys.modules[name]
        if str(getattr(module, "__file__", "") or "").startswith(str(site)):
            del sys.modules[name]
