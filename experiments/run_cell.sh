#!/bin/bash
# usage: run_cell.sh DATASET ARCH NAME INIT K [EXTRA...]  -- one JSON per training seed, so partial results survive
# EXTRA goes to every training.reproduce call (e.g. --max-train-images 4000 --max-test-images 1000).
# Run from the repository root; per-seed JSONs go to $CINR_RUNS (default runs/).
RUNS=${CINR_RUNS:-runs}; mkdir -p "$RUNS"
for k in $(seq 0 $(($5 - 1))); do
  .venv/bin/python -m training.reproduce --dataset "$1" --arch "$2" --preset cpu --seeds 1 --seed-offset $k \
    --init "$4" --threads 1 --cache-dir "$RUNS/cache" --json "$RUNS"/$3-$4-seed$k.json "${@:6}"
done
