#!/usr/bin/env bash
# Set up facehash-bench from scratch in ./.venv (idempotent): the package, its dev tools,
# and bytecode for our sources (this machine sets PYTHONDONTWRITEBYTECODE=1, so without
# compiling at install time every process would pay the compile again).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --compile -e ".[dev]"
.venv/bin/python -m compileall -q -j 0 bench plugins dcbh baselines examples >/dev/null
echo "facehash-bench installed in .venv ($(.venv/bin/python -c 'import bench; print(bench.__version__)'))"
