#!/bin/sh
# The shipped model's recipe (voronoi64 v2, a laguerre head), from scratch: dataset, training
# (resumable: re-run to continue), ranking of the kept checkpoints, export and the fidelity report.
#   recipes/voronoi64.sh [WORK_DIR]        (default ../work-voronoi64; data and the run live there)
# Environment: MICROGAN_TRAIN_THREADS=1 leaves a core free; STORE (default models_store).
# Version 1 (the pixel generator) came from this file as of commit 0742e3a (docs/voronoi64-v1.md).
set -eu
cd "$(dirname "$0")/.."
WORK=${1:-../work-voronoi64}
STORE=${STORE:-models_store}
PY=${PY:-.venv/bin/python}
mkdir -p "$WORK"

# 1. Data: the training set and a held-out set made with another seed.
[ -f "$WORK/voronoi.zip" ] || $PY -m training dataset --out "$WORK/voronoi.zip" --count 20000 --seed 1
[ -f "$WORK/voronoi-test.zip" ] || $PY -m training dataset --out "$WORK/voronoi-test.zip" --count 4000 --seed 2

# 2. Train (the same command resumes an interrupted run). The cpu preset is the shipped
#    arrangement: a laguerre head of 16 sites whose count is drawn uniform over a learnt range
#    (g_count=uniform), the cpu critic, learning rates 2e-4 / 8e-4 decaying over 8,000 steps. Every
#    checkpoint is kept (500 steps apart) for the ranking below.
$PY -m training train --data "$WORK/voronoi.zip" --run-dir "$WORK/run" --preset cpu \
    --set eval_interval=500 --set checkpoint_interval=500 --set frame_interval=250 --set log_interval=100 \
    --set keep_checkpoints=20

# 3. Rank the kept checkpoints on held-out data (n=2000, raw and moving-average weights) and export
#    the best. The card carries the figures of `evaluate --n 2000` with the training set
#    (memorisation included).
$PY -m training rank --run-dir "$WORK/run" --data "$WORK/voronoi-test.zip" --n 2000 --out "$WORK/rank.json"
BEST=$($PY -c 'import json, sys; b = json.load(open(sys.argv[1]))["best"]; print(b["step"], b["weights"])' "$WORK/rank.json")
set -- $BEST
$PY -m training export --run-dir "$WORK/run" --store "$STORE" --name voronoi64 --checkpoint "$1" --weights "$2" \
    --data "$WORK/voronoi-test.zip" --train-data "$WORK/voronoi.zip" --n 2000
VERSION=$(ls "$STORE/voronoi64" | grep -E '^[0-9]+$' | sort -n | tail -1)

# 4. The fidelity report the README quotes.
$PY -m training evaluate --model "$STORE/voronoi64/$VERSION" --data "$WORK/voronoi-test.zip" \
    --train-data "$WORK/voronoi.zip" --n 2000 --out "$WORK/report.json" --figure "$WORK/report.png"
