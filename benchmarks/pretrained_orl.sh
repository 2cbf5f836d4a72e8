#!/usr/bin/env bash
# docs/pretrained.md: dlib's face-recognition network (dlib-resnet) on ORL under harness-standard,
# 20 epochs: the float top line, the four floors on its embeddings and every deep method
# head-only on the frozen embeddings, closed-set (docs/pretrained-orl.yaml) and open-set on 4
# identity splits (docs/pretrained-orl-openset.yaml); then one study per deep method with the
# same budget (TRIALS trials of 20 epochs at 12 bits, closed-set) and its best configuration on
# seed 0; then the tables of the page, each command's wall time on stderr.
# Run it in an empty folder (the MLflow and Optuna stores go there); TRIALS=... widens the studies.
# SMOKE=1 (CI, benchmarks/test_benchmark_smoke.py): the top line, the ITQ floor and one frozen deep
# method at 12 bits, 1 epoch, then one 1-trial study and the leaderboard (ORL is the smallest set
# dlib can align; its embeddings are computed once and cached).
set -euo pipefail
DOCS=$(cd "$(dirname "$0")/../docs" && pwd)
DEEP=dcbh,ddh,dsh,dcdh,dpsh,hashnet,greedyhash,csq,orthohash
TRIALS=${TRIALS:-2}
timed() { local start=$SECONDS; "$@"; echo "wall $((SECONDS - start)) s: $*" >&2; }
if [ -n "${SMOKE:-}" ]; then
    bench run --method dlib-float,dlib-pca-itq,csq --backbone dlib-resnet --bits 12 --epochs 1 \
      --standard harness-standard --experiment pretrained-smoke
    bench tune --method csq --backbone dlib-resnet --backbone-mode frozen --bits 12 --epochs 1 \
      --standard harness-standard --trials 1 --final-seeds 0
    bench leaderboard --experiment pretrained-smoke --format md --no-log
    exit 0
fi
timed bench sweep "$DOCS/pretrained-orl.yaml"
timed bench sweep "$DOCS/pretrained-orl-openset.yaml"
timed bench tune --method "$DEEP" --backbone dlib-resnet --backbone-mode frozen --bits 12 --epochs 20 \
  --standard harness-standard --trials "$TRIALS" --final-seeds 0
bench leaderboard --experiment pretrained-orl --format md --reference dlib-pca-itq
bench leaderboard --experiment pretrained-orl-openset --format md --reference dlib-pca-itq
bench leaderboard --dataset orl --tuned --format md  # the most recent protocol: the studies'
