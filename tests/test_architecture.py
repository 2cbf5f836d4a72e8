"""The architecture is enforced, not described: the import-linter contracts in
pyproject.toml hold, a wrong import breaks them, and modules stay small and in their rooms."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("bench", "plugins", "dcbh", "baselines")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    if not LINT.exists():
        pytest.fail("lint-imports is missing: run bash scripts/install.sh (import-linter is a dev dependency)")
    # the copy's packages come first on the path, so the contracts are checked on its sources
    env = {"PATH": str(LINT.parent), "PYTHONPATH": str(cwd), "HOME": str(cwd)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


def test_import_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "wrong_import"), [
    ("bench/data/faces.py", "import bench.running.planning"),  # a lower layer reaching up
    ("bench/training/loop.py", "import bench.evaluation.engine"),  # independent siblings
    ("bench/config/protocol.py", "import dcbh.method"),  # the core naming a method
])
def test_a_wrong_import_breaks_the_contract(tmp_path, module, wrong_import):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # deliberately wrong\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout, result.stdout


def test_bench_root_holds_only_its_package_face():
    modules = sorted(p.name for p in (ROOT / "bench").glob("*.py"))
    assert modules in (["__init__.py"], ["__init__.py", "__main__.py"]), modules


def test_no_module_over_400_lines():
    long = {}
    for name in (*PACKAGES, "tests", "examples", "benchmarks"):
        for path in (ROOT / name).rglob("*.py"):
            lines = len(path.read_text().splitlines())
            if lines > 400:
                long[str(path.relative_to(ROOT))] = lines
    assert not long, f"split these modules (over 400 lines): {long}"


def test_api_and_running_type_check_clean():
    """mypy (configured in pyproject.toml) finds nothing in the plugin contract and the run
    orchestration: a run's kind, the factories' signatures and the executors' protocols are
    checked by the type checker, not only at run time."""
    mypy = Path(sys.executable).with_name("mypy")
    if not mypy.exists():
        pytest.fail("mypy is missing: run bash scripts/install.sh (mypy is a dev dependency)")
    result = subprocess.run([str(mypy), "bench/api", "bench/running"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_the_type_check_can_fail(tmp_path):
    """The check above is not vacuous: a deep-only field read off a prepared run of either kind fails it."""
    bad = tmp_path / "bad.py"
    bad.write_text("from bench.running.prepared import PreparedRun\n\n\n"
                   "def epochs(run: PreparedRun) -> int:\n    return run.config.training.epochs\n")
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run([str(mypy), str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "has no attribute \"training\"" in result.stdout, result.stdout


def test_run_statuses_are_named_by_the_enum_only():
    """A run status is a member of bench.tracking.status.RunStatus, never a bare string."""
    import re

    from bench.tracking.status import RunStatus

    pattern = re.compile("|".join(rf"[\"']{s.value}[\"']" for s in RunStatus))
    bare = [f"{path.relative_to(ROOT)}:{i}" for path in (ROOT / "bench").rglob("*.py")
            if path.name != "status.py"
            for i, line in enumerate(path.read_text().splitlines(), 1)
            if pattern.search(line) and ">>>" not in line]
    assert not bare, bare
