#!/bin/bash
# Merge the per-seed JSONs of every cell that has any, print the tables.
RUNS=${CINR_RUNS:-runs}; mkdir -p "$RUNS/merged"
for cell in mfn-mnist5k-independent mfn-mnist5k-shared mfn-mnist5k-probe16-independent \
    mfn-mnist5k-simclr1500-independent siren-mnist5k-independent siren-mnist5k-shared \
    siren-cifar10-independent mfn-cifar10-independent \
    siren-mnist5k-probe128-lr5e-3-independent mfn-mnist5k-probe128-lr5e-3-independent \
    siren-cifar10-probe128-lr5e-3-independent mfn-cifar10-probe128-lr5e-3-independent \
    siren-mnist5k-probe64-lr5e-3-independent siren-cifar10-probe64-lr5e-3-independent \
    siren-mnist5k-canonical-independent mfn-mnist5k-canonical-independent \
    siren-cifar10-canonical-independent mfn-cifar10-canonical-independent \
    siren-mnist5k-canonical-noaug-independent siren-cifar10-canonical-noaug-independent \
    mfn-mnist5k-canonical-noaug-independent mfn-cifar10-canonical-noaug-independent \
    siren-cifar10-canonical-enc64-independent mfn-cifar10-canonical-enc64-independent \
    siren-mnist5k-canonical-enc64-independent mfn-mnist5k-canonical-enc64-independent \
    siren-mnist5k-canonical-enc64-fitlr2e-4-independent siren-mnist5k-canonical-enc64-fitlr1e-4-independent \
    siren-mnist5k-canonical-enc64-fitlr2e-4-noaug-independent \
    siren-mnist5k-canonical-enc64-shared siren-mnist5k-canonical-enc64-fitlr2e-4-noaug-shared \
    mfn-mnist5k-canonical-enc64-shared siren-cifar10-canonical-enc64-shared; do
  files=$(ls "$RUNS"/$cell-seed*.json 2>/dev/null)
  [ -z "$files" ] && { echo "== $cell: no finished seed"; continue; }
  echo "== $cell: $files"
  PYTHONPATH=. .venv/bin/python -m training.reproduce --merge "$RUNS"/merged/$cell.json $files
done
