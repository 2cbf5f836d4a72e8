#!/usr/bin/env bash
# The comparison in docs/tuning.md: DCBH, DDH, DSH, CSQ and OrthoHash at 12 bits on ORL under
# the open-set protocol (28 training / 12 retrieval identities), 4 identity splits, 20 epochs
# per run; the defaults on seed 0 of each split, then per split one study of 4 trials per
# method and the tuned configuration on the same seed; then the side-by-side table (pooled
# over the splits: n=4 per cell). METHODS=... and SEEDS=0,1,2 widen it.
# Run it in an empty folder (the MLflow and Optuna stores go there).
# SMOKE=1 (CI, benchmarks/test_benchmark_smoke.py): the same commands on a tiny synthfaces, one
# method, 1 epoch, 2 splits, 1 trial.
set -euo pipefail
METHODS=${METHODS:-dcbh,ddh,dsh,csq,orthohash}
SEEDS=${SEEDS:-0}
COMMON=(--bits 12 --epochs 20 --split open-set --split-seeds 0,1,2,3)
TRIALS=4
if [ -n "${SMOKE:-}" ]; then
    METHODS=dsh TRIALS=1
    COMMON=(--bits 12 --epochs 1 --split open-set --split-seeds 0,1 --dataset synthfaces
            --set dataset.identities=8 --set dataset.images_per_identity=10)
fi
bench run --method "$METHODS" "${COMMON[@]}" --seeds "$SEEDS"
bench tune --method "$METHODS" "${COMMON[@]}" --trials "$TRIALS" --final-seeds "$SEEDS"
bench leaderboard --tuned --format md --no-log
