#!/bin/bash
# usage: run_cell_extra.sh DATASET ARCH NAME INIT K EXTRA_ARGS...  -- like run_cell.sh, with extra reproduce flags
# Run from the repository root; per-seed JSONs go to $CINR_RUNS (default runs/).
RUNS=${CINR_RUNS:-runs}; mkdir -p "$RUNS"
d=$1; a=$2; n=$3; i=$4; K=$5; shift 5
for k in $(seq 0 $(($K - 1))); do
  .venv/bin/python -m training.reproduce --dataset "$d" --arch "$a" --preset cpu --seeds 1 --seed-offset $k \
    --init "$i" --threads 1 --cache-dir "$RUNS/cache" --json "$RUNS"/$n-$i-seed$k.json "$@"
done
