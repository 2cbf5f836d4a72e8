#!/usr/bin/env bash
# The comparison in docs/tuning.md: DDH and DSH at 12 bits on ORL (closed-set), 2 epochs per
# run; the defaults on seeds 0,1,2, then 4 trials per method and the tuned configurations on
# the same seeds; then the side-by-side table. Run it in an empty folder (the stores go there).
# SMOKE=1 (CI, benchmarks/test_benchmark_smoke.py): the same commands on a tiny synthfaces, 1 epoch,
# 1 trial, seed 0.
set -euo pipefail
EPOCHS=2 TRIALS=4 SEEDS=0,1,2 DATA=()
if [ -n "${SMOKE:-}" ]; then
    EPOCHS=1 TRIALS=1 SEEDS=0
    DATA=(--dataset synthfaces --set dataset.identities=4 --set dataset.images_per_identity=10)
fi
bench run --method ddh,dsh --bits 12 --epochs "$EPOCHS" --seeds "$SEEDS" "${DATA[@]}"
bench tune --method ddh,dsh --bits 12 --epochs "$EPOCHS" --trials "$TRIALS" --final-seeds "$SEEDS" "${DATA[@]}"
bench leaderboard --tuned --format md --no-log
