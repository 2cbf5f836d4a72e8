#!/usr/bin/env bash
# The comparison in docs/tuning.md: DDH and DSH at 12 bits on ORL (closed-set), 2 epochs per
# run; the defaults on seeds 0,1,2, then 4 trials per method and the tuned configurations on
# the same seeds; then the side-by-side table. Run it in an empty folder (the stores go there).
set -euo pipefail
bench run --method ddh,dsh --bits 12 --epochs 2 --seeds 0,1,2
bench tune --method ddh,dsh --bits 12 --epochs 2 --trials 4 --final-seeds 0,1,2
bench leaderboard --tuned --format md --no-log
