"""Issue 24 items 10 and 11: the build metadata setuptools will keep accepting, and the README's
test command collecting the benchmark smoke tests."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it() -> None:
    # a TOML table is deprecated (setuptools stops building it after 2027-02-18)
    assert PYPROJECT["project"]["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in PYPROJECT["project"].get("classifiers", []))
    [requirement] = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    assert tuple(map(int, re.search(r">=(\d+)", requirement).group(1).split("."))) >= (77,)  # PEP 639


def test_plain_pytest_collects_the_benchmark_smoke_tests() -> None:
    assert "benchmarks" in PYPROJECT["tool"]["pytest"]["ini_options"]["testpaths"]
    assert (ROOT / "benchmarks" / "test_benchmark_smoke.py").is_file()
