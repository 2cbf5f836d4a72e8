#!/usr/bin/env bash
# Download (here, where the package index is reachable) the wheels that benchmarks/gpu_check.sh
# installs offline on a bare GPU machine: CPython 3.12, manylinux x86_64; everything the project
# imports beyond what that machine brings (torch, torchvision, timm, pandas, pluggy,
# pytest-benchmark), pinned to the versions installed in .venv (the ones the tests ran with).
#
# The device tool carries at most 64 MiB per call, tree included, and numba's llvmlite alone is
# 57 MB, so the wheels land in two folders, their members recompressed with LZMA (pip reads
# them; it takes a few CPU minutes here):
#   wheels/numba  llvmlite + numba                               (43 MB measured)
#   wheels/rest   mlflow-skinny, sqlalchemy, matplotlib, numpy, ... (47 MB measured)
# Carry one folder per call (see gpu_check.sh --install-only).
#
#   bash benchmarks/fetch_wheels.sh [DEST=wheels]
#   bash benchmarks/fetch_wheels.sh --list     # smoke (CI): print the pinned wheels, download nothing
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-wheels}
PY=${PYTHON:-.venv/bin/python}

# What gpu_check.sh needs on top of the GPU image: tracking (mlflow-skinny + SQLAlchemy store),
# the evaluation kernel (numba), the CLI (typer, rich, pydantic, pyyaml; matplotlib for the
# report commands it imports), the tests (hypothesis), the editable install (setuptools), and
# numpy in case the image's numpy does not satisfy numba.
NEEDED="mlflow-skinny sqlalchemy alembic numba typer rich pydantic pyyaml matplotlib hypothesis setuptools numpy"
# Big wheels the GPU image certainly has (torch and its CUDA libraries, pandas, pillow).
PRESENT="torch torchvision triton timm pandas pillow sympy networkx pluggy pytest pytest-benchmark pip"

read -r -a PINNED < <("$PY" - "$NEEDED" "$PRESENT" <<'EOF'
import re
import sys
from importlib import metadata

from packaging.requirements import Requirement


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names):
    seen, stack = set(), [norm(n) for n in names]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"fetch_wheels: {name} is not installed in this environment; pip install it first")
        seen.add(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": "", "python_version": "3.12"}):
                stack.append(norm(req.name))
    return seen


needed, present = sys.argv[1].split(), set(sys.argv[2].split())
names = sorted(n for n in closure(needed) if n not in present and not n.startswith(("nvidia-", "cuda-")))
if "mlflow" in {norm(d.metadata["Name"]) for d in metadata.distributions()}:
    version = metadata.version("mlflow")  # skinny carries the same client and SQL store as mlflow
    names = [n for n in names if n != "mlflow-skinny"] + [f"mlflow-skinny=={version}"]
print(" ".join(n if "==" in n else f"{n}=={metadata.version(n)}" for n in names))
EOF
)

if [ "$DEST" = "--list" ]; then
    [ "${#PINNED[@]}" -gt 0 ] || { echo "fetch_wheels: no wheels resolved"; exit 1; }
    printf '%s\n' "${PINNED[@]}"
    exit 0
fi

PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
          --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64
          --platform manylinux_2_28_x86_64 --platform any)
NUMBA=() REST=()
for req in "${PINNED[@]}"; do
    case "$req" in llvmlite==*|numba==*) NUMBA+=("$req") ;; *) REST+=("$req") ;; esac
done
mkdir -p "$DEST/numba" "$DEST/rest"
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$DEST/numba" "${NUMBA[@]}"
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$DEST/rest" "${REST[@]}"

# LZMA members: pip installs them like deflated ones; the RECORD hashes cover contents, unchanged.
"$PY" - "$DEST/numba" "$DEST/rest" <<'EOF'
import sys
import zipfile
from pathlib import Path

for wheel in sorted(w for folder in sys.argv[1:] for w in Path(folder).glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        if all(i.compress_type == zipfile.ZIP_LZMA for i in z.infolist()):
            continue
        members = [(i, z.read(i)) for i in z.infolist()]
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as out:
        for info, data in members:
            info.compress_type = zipfile.ZIP_LZMA
            out.writestr(info, data)
    tmp.replace(wheel)
    if wheel.stat().st_size > 2**20:
        print(f"recompressed {wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB")
EOF
echo "wheels for gpu_check.sh:"
du -sh "$DEST/numba" "$DEST/rest"
