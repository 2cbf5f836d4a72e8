"""Every script in benchmarks/ does nothing when imported (``pytest benchmarks`` imports each
one for its doctests): no output, no run; a script's work sits behind ``__main__``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPTS = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_importing_a_benchmark_script_runs_nothing(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location(f"benchmark_import_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    out = capsys.readouterr()
    assert out.out == "" and out.err == "", f"{path.name} printed at import: {(out.out + out.err)[:300]}"
    standalone = "if __name__ == \"__main__\":" in path.read_text()
    benchmarks = any(name.startswith("test_") for name in vars(module))
    assert standalone or benchmarks or path.stem == "training_pipelines", f"{path.name}: no __main__ guard"
