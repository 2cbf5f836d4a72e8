#!/usr/bin/env bash
# Quick GPU check for a small device budget (about 2.5 minutes on an H200): offline install of
# what the bare image lacks, the throughput table (benchmarks/train_throughput.py) and bf16 vs
# fp32 mAP (benchmarks/precision_check.py). The wheel folder (default wheels/min, under the
# 64 MiB a device call carries with the tree) holds numba + llvmlite from wheels/numba and
# numpy, pydantic, pydantic_core, annotated_types, typing_inspection, typing_extensions,
# pyyaml and setuptools from wheels/rest (benchmarks/fetch_wheels.sh makes both).
#   bash benchmarks/gpu_quick.sh          (device tool: carry wheels/min)
cd "$(dirname "$0")/.."
WHEELS=${FACEHASH_WHEELS:-wheels/min}
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
T0=$(date +%s); step() { printf '\n=== %s [t=%ss]\n' "$1" "$(($(date +%s) - T0))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())'
step install
"$PY" -m pip install -q --no-index --find-links "$WHEELS" numba pydantic pyyaml setuptools 2>&1 | grep -v WARNING | tail -3
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | grep -v WARNING | tail -3
"$PY" -c 'import bench, numba, numpy; print("facehash-bench", bench.__version__, "numba", numba.__version__, "numpy", numpy.__version__)'
step throughput
timeout 160 "$PY" benchmarks/train_throughput.py --device cuda --steps 30 --repeats 3 --json "$OUT/throughput.json" 2>&1 | grep -v Warning
step precision
timeout 150 "$PY" benchmarks/precision_check.py 50 200 cuda 2>&1 | grep -v Warning
step done
