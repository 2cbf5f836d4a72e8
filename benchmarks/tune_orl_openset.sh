#!/usr/bin/env bash
# The comparison in docs/tuning.md: every deep method at 12 bits on ORL under the open-set
# protocol (28 training / 12 retrieval identities), 4 identity splits, 5 epochs per run; the
# defaults on seeds 0,1 of each split, then per split one study of 4 trials per method and the
# tuned configuration on the same seeds; then the side-by-side table (pooled over the splits).
# Run it in an empty folder (the MLflow and Optuna stores go there).
set -euo pipefail
METHODS=${METHODS:-dcbh,ddh,dsh,dcdh,dpsh,hashnet,greedyhash,csq,orthohash}
COMMON=(--bits 12 --epochs 5 --split open-set --split-seeds 0,1,2,3)
bench run --method "$METHODS" "${COMMON[@]}" --seeds 0,1
bench tune --method "$METHODS" "${COMMON[@]}" --trials 4 --final-seeds 0,1
bench leaderboard --tuned --format md --no-log
