#!/usr/bin/env bash
# GPU check in one go on a bare machine (CPython 3.12 with torch, torchvision, timm, pandas,
# pluggy and pytest-benchmark; no mlflow, no network). About 5 minutes. Prints:
#   1. the CUDA test subset (tests marked `cuda`, skipped on CPU machines),
#   2. the training throughput table: harness (--cuda-graph on) vs reference pipeline,
#      dcbh/ddh/dsh, batch 256 (then dcbh with --cuda-graph off),
#   3. the GPU evaluation benchmark (benchmarks/eval_table.py --device cuda, 8,000 x 64,000),
#   4. the wall time of `bench run --method dcbh --bits 12,24,36,48` on YouTube-Faces-size
#      synthfaces for a short budget (bf16, the CUDA default), then the same in fp32, with the
#      mAP of both (mixed precision must agree with float32 within noise).
#
# Missing Python packages are installed offline from the wheel folders benchmarks/fetch_wheels.sh
# makes (wheels/numba, wheels/rest; override the root with FACEHASH_WHEELS). The device tool
# carries 64 MiB per call; when both folders do not fit in one call, carry wheels/numba with
# `bash benchmarks/gpu_check.sh --install-only`, then at once (the machine stays warm ~30 s)
# wheels/rest with `bash benchmarks/gpu_check.sh`: what the first call installed is still there.
#
#   bash benchmarks/gpu_check.sh [--install-only | --quick | --smoke]
#
# --quick, for a small device budget (about 4 minutes on an H200, one call): installs only
# what steps 1, 2 and 5 need (numba, pydantic, pyyaml, setuptools; default folder wheels/min: numba
# + llvmlite from wheels/numba, numpy, pydantic, pydantic_core, annotated_types,
# typing_inspection, typing_extensions, pyyaml and setuptools from wheels/rest, 57 MB), runs
# the CUDA tests but the torch.compile one, step 2 with 30 timed steps, 2b. dcbh with
# --cuda-graph off, then 5. bf16 vs fp32 through benchmarks/precision_check.py (DCBH, 48 bits,
# synthfaces 200 identities, 50 epochs, seeds 0-2; no MLflow needed).
# --smoke (CI, benchmarks/test_benchmark_smoke.py): the --quick steps on the CPU at tiny sizes,
# nothing installed (PYTHON=.venv/bin/python), so a broken step shows before a GPU session.
# Scratch (runs, MLflow store, checkpoints) goes to /tmp/gpu_check (FACEHASH_CHECK_DIR); only the
# log and the throughput JSON are copied to $OUT when the device tool sets it. Exit status 1 when
# a step failed (the log says which).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MODE=${1:-}
SMOKE=$([ "$MODE" = "--smoke" ] && echo 1)
QUICK=$([ "$MODE" = "--quick" ] || [ -n "$SMOKE" ] && echo 1)
WHEELS=${FACEHASH_WHEELS:-wheels${QUICK:+/min}}
RESULTS=${FACEHASH_CHECK_DIR:-/tmp/gpu_check}
# step 2 measures the CUDA graphs, which `--cuda-graph auto` leaves off on CUDA until this check passes
DEVICE=cuda STEPS=30 REPEATS=3 TINY=(--cuda-graph on) PRECISION_CHECK=(50 200 cuda)
if [ -n "$SMOKE" ]; then
    DEVICE=cpu STEPS=1 REPEATS=1 TINY=(--identities 4 --batch-size 8 --warmup 1) PRECISION_CHECK=(1 4 cpu 1 fp32)
fi
FAILED=0
failed() { echo "gpu_check: FAILED: $1"; FAILED=1; }
EPOCHS=${FACEHASH_CHECK_EPOCHS:-2}
rm -rf "$RESULTS" && mkdir -p "$RESULTS"  # scratch: a rerun must not skip runs found in an old store
exec > >(tee "$RESULTS/gpu_check.log") 2>&1
T0=$(date +%s)
step() { printf '\n=== %s  [t=%ss]\n' "$1" "$(($(date +%s) - T0))"; }
BENCH=("$PY" -c 'import sys; from bench.cli import main; sys.argv[0] = "bench"; main()')
YTF=(--dataset synthfaces --set dataset.identities=1595 --set dataset.images_per_identity=47)  # 40 train/id

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda, "| available", torch.cuda.is_available())'

step "install what is missing (offline)"
if [ -n "$SMOKE" ]; then
    echo "smoke: nothing installed"
else
LINKS=()
for folder in "$WHEELS" "$WHEELS"/*/; do
    [ -d "$folder" ] && compgen -G "$folder/*.whl" >/dev/null && LINKS+=(--find-links "$folder")
done
MLFLOW=$(sed -n 's/.*"mlflow==\([0-9.]*\)".*/\1/p' pyproject.toml)
NEED=("mlflow-skinny==$MLFLOW" sqlalchemy alembic numba typer rich pydantic pyyaml matplotlib hypothesis setuptools)
if [ "$MODE" = "--install-only" ]; then
    NEED=(numba)
elif [ -n "$QUICK" ]; then
    NEED=(numba pydantic pyyaml setuptools)
fi
if ! "$PY" -m pip install -q --no-index "${LINKS[@]}" "${NEED[@]}"; then
    echo "gpu_check: wheels missing under $WHEELS (run benchmarks/fetch_wheels.sh here, carry $WHEELS/numba and $WHEELS/rest)"
    exit 3
fi
[ "$MODE" = "--install-only" ] && { echo "installed: ${NEED[*]}"; exit 0; }
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 3
"$PY" -c 'import bench, numba, numpy; print("facehash-bench", bench.__version__, "| numba", numba.__version__, "| numpy", numpy.__version__)'
fi
[ -n "$QUICK" ] || "$PY" -c 'import mlflow; print("mlflow", mlflow.__version__)'

finish() {
    step "done"
    if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
        cp "$RESULTS/gpu_check.log" "$RESULTS/throughput.json" "$OUT/" 2>/dev/null
    fi
    exit "$FAILED"
}

cuda_tests() {  # $1: timeout; the rest: extra pytest arguments
    local limit=$1; shift
    mapfile -t CUDA_TESTS < <(grep -l "mark.cuda" tests/*.py)
    timeout "$limit" "$PY" -m pytest -m cuda -q -p no:cacheprovider -rs "$@" "${CUDA_TESTS[@]}" 2>&1 | tail -15 \
        || failed "CUDA tests"
}

graphs_off() {
    step "2b. dcbh without CUDA graphs (what the graphs give)"
    timeout 60 "$PY" benchmarks/train_throughput.py --device "$DEVICE" --steps "$STEPS" --repeats 2 --methods dcbh \
        --epoch estimate "${TINY[@]}" --cuda-graph off 2>&1 | grep -v Warning | tail -3 || failed "step 2b"
}

if [ -n "$QUICK" ]; then
    step "1. CUDA tests (pytest -m cuda, without the torch.compile one)"
    if [ -n "$SMOKE" ]; then
        echo "smoke: skipped (no CUDA here; the test suite collects them)"
    else
        cuda_tests 120 -k "not compiled"
    fi
    step "2. training throughput (harness vs reference pipeline, batch 256, 32x32)"
    timeout 160 "$PY" benchmarks/train_throughput.py --device "$DEVICE" --steps "$STEPS" --repeats "$REPEATS" \
        --json "$RESULTS/throughput.json" "${TINY[@]}" 2>&1 | grep -v Warning || failed "step 2"
    graphs_off
    step "5. bf16 vs fp32 (benchmarks/precision_check.py ${PRECISION_CHECK[*]})"
    timeout 150 "$PY" benchmarks/precision_check.py "${PRECISION_CHECK[@]}" 2>&1 | grep -v Warning \
        || failed "step 5"
    finish
fi

step "1. CUDA tests (pytest -m cuda)"
cuda_tests 150

step "2. training throughput (harness vs reference pipeline, batch 256, 32x32)"
timeout 240 "$PY" benchmarks/train_throughput.py --device cuda --steps 40 --repeats 3 --cuda-graph on \
    --json "$RESULTS/throughput.json" 2>&1 | grep -v Warning
graphs_off

step "3. GPU evaluation benchmark"
timeout 120 "$PY" benchmarks/eval_table.py --device cuda --queries 8000 --gallery 64000 --skip-faiss \
    --memory-gallery 0 --peer-queries 200 --candidate-queries 200 --repeat 3 --check 2>&1 | tail -15

step "4. bench run --method dcbh --bits 12,24,36,48, YouTube-Faces-size synthfaces, $EPOCHS epochs"
for precision in bf16 fp32; do
    start=$(date +%s%N)
    timeout 300 "${BENCH[@]}" run --method dcbh --bits 12,24,36,48 "${YTF[@]}" --epochs "$EPOCHS" \
        --precision "$precision" --tracking-uri "sqlite:///$RESULTS/mlflow-$precision.db" \
        --output "$RESULTS/runs-$precision" --experiment gpu-check 2>&1 | tail -12
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    echo "bench run --precision $precision: wall $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100)) s"
done
"$PY" - "$RESULTS" <<'EOF'
import sys
from mlflow.tracking import MlflowClient

maps = {}
for precision in ("bf16", "fp32"):  # one store per precision
    client = MlflowClient(f"sqlite:///{sys.argv[1]}/mlflow-{precision}.db")
    experiment = client.get_experiment_by_name("gpu-check")
    for run in client.search_runs([experiment.experiment_id]):
        tags = run.data.tags
        if "facehash.bits" not in tags:
            continue  # the parent run
        maps.setdefault(int(tags["facehash.bits"]), {})[tags.get("facehash.accel.precision", "?")] = run.data.metrics.get("map")
print("| bits | mAP bf16 | mAP fp32 | difference |\n|---:|---:|---:|---:|")
for bits in sorted(maps):
    b, f = maps[bits].get("bf16"), maps[bits].get("fp32")
    diff = f"{b - f:+.4f}" if b is not None and f is not None else "-"
    print(f"| {bits} | {b if b is None else round(b, 4)} | {f if f is None else round(f, 4)} | {diff} |")
EOF
finish
