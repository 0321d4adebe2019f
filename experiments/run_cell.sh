#!/bin/bash
# usage: run_cell.sh DATASET ARCH NAME INIT K  -- one JSON per training seed, so partial results survive
# Run from the repository root; per-seed JSONs go to $CINR_RUNS (default runs/).
RUNS=${CINR_RUNS:-runs}; mkdir -p "$RUNS"
for k in $(seq 0 $(($5 - 1))); do
  .venv/bin/python -m training.reproduce --dataset "$1" --arch "$2" --preset cpu --seeds 1 --seed-offset $k \
    --init "$4" --threads 1 --cache-dir "$RUNS/cache" --json "$RUNS"/$3-$4-seed$k.json
done
