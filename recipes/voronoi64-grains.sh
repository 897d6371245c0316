#!/bin/sh
# The shipped model's recipe (voronoi64 v3, conditioned on grains per image), from scratch: dataset,
# training with condition=grains (resumable: re-run to continue), ranking of the kept checkpoints
# (eight checks and count obedience), export and the fidelity report.
#   recipes/voronoi64-grains.sh [WORK_DIR]   (default ../work-voronoi64; shares the data of voronoi64.sh)
# Environment: NAME (default voronoi64), STORE (default models_store), MICROGAN_TRAIN_THREADS=1
# leaves a core free. v3 was ranked over steps 1,500 to 4,000 (moving average) and is step 1,500.
set -eu
cd "$(dirname "$0")/.."
WORK=${1:-../work-voronoi64}
NAME=${NAME:-voronoi64}
STORE=${STORE:-models_store}
PY=${PY:-.venv/bin/python}
mkdir -p "$WORK"

# 1. Data: the training set and a held-out set made with another seed (as recipes/voronoi64.sh).
[ -f "$WORK/voronoi.zip" ] || $PY -m training dataset --out "$WORK/voronoi.zip" --count 20000 --seed 1
[ -f "$WORK/voronoi-test.zip" ] || $PY -m training dataset --out "$WORK/voronoi-test.zip" --count 4000 --seed 2

# 2. Train: the cpu preset (laguerre head of 16 sites, learning rates 2e-4 / 8e-4) conditioned on
#    grains per image: each image's count is measured once (cached beside the dataset), the generator
#    draws exactly that many sites, equally weighted (a Voronoi tessellation), the critic judges
#    (image, count); 4,000 steps, every checkpoint kept (250 apart) for the ranking below.
$PY -m training train --data "$WORK/voronoi.zip" --run-dir "$WORK/run-grains" --preset cpu \
    --set condition=grains --set g_weights=equal --set total_steps=4000 --set eval_interval=500 \
    --set keep_checkpoints=40

# 3. Rank every kept checkpoint on held-out data (eight checks, plus exact / within-1 shares of the
#    requested count) and export the lowest score with the card's figures from `evaluate`.
$PY -m training rank --run-dir "$WORK/run-grains" --data "$WORK/voronoi-test.zip" --n 2000 --weights ema \
    --steps 1500,1750,2000,2500,3000,3500,3750,4000 --out "$WORK/rank-grains.json"
BEST=$($PY -c 'import json, sys; b = json.load(open(sys.argv[1]))["best"]; print(b["step"], b["weights"])' "$WORK/rank-grains.json")
set -- $BEST
$PY -m training export --run-dir "$WORK/run-grains" --store "$STORE" --name "$NAME" --checkpoint "$1" --weights "$2" \
    --data "$WORK/voronoi-test.zip" --train-data "$WORK/voronoi.zip" --n 2000
VERSION=$(ls "$STORE/$NAME" | grep -E '^[0-9]+$' | sort -n | tail -1)

# 4. The fidelity report the README quotes (eight checks, then count obedience per count).
$PY -m training evaluate --model "$STORE/$NAME/$VERSION" --data "$WORK/voronoi-test.zip" \
    --train-data "$WORK/voronoi.zip" --n 2000 --out "$WORK/report-grains.json" --figure "$WORK/report-grains.png"
