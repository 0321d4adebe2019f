#!/bin/bash
# One prepared call on a lent GPU (run from the repository root): does scale lift weights-only SimCLR on MNIST-5k?
# Fits the `full` preset's INR datasets (8 INRs per image), then runs side by side, each time-boxed by
# experiments/gpu_scale.py: SimCLR with the full preset's encoder on SIREN and on MFN, the same encoder trained
# supervised on SIREN, and SIREN CIFAR-10 with the cpu preset at SimCLR lr 5e-3 (K = 3 training seeds).
# usage: OUT=dir CIFAR=/path/to/cifar10-train-5k PY=python3 BUDGET_S=240 experiments/gpu_scale.sh
# Results: $OUT/scale.jsonl (one JSON line per finished run) and one log per process.
PY=${PY:-python3}; OUT=${OUT:?set OUT}; CIFAR=${CIFAR:?set CIFAR}; B=${BUDGET_S:-240}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
G=("$PY" experiments/gpu_scale.py --device cuda --cache-dir /tmp/cinr-runs --out "$OUT/scale.jsonl")

# The fits, one after another: each fills the GPU, and parallel runs then share the cache.
{ "${G[@]}" --mode fit --dataset mnist5k --arch siren --preset full
  "${G[@]}" --mode fit --dataset mnist5k --arch mfn --preset full
  "${G[@]}" --mode fit --dataset "$CIFAR" --arch siren --preset cpu; } > "$OUT/fits.log" 2>&1
echo "fits rc $? at $(date +%T)"

"${G[@]}" --mode simclr --dataset mnist5k --arch siren --preset full --budget-s "$B" --label siren-mnist-full-simclr \
  > "$OUT/siren-simclr.log" 2>&1 &
"${G[@]}" --mode simclr --dataset mnist5k --arch mfn --preset full --budget-s "$B" --label mfn-mnist-full-simclr \
  > "$OUT/mfn-simclr.log" 2>&1 &
"${G[@]}" --mode supervised --dataset mnist5k --arch siren --preset full --budget-s "$B" \
  --label siren-mnist-full-supervised > "$OUT/siren-supervised.log" 2>&1 &
for seed in 0 1 2; do
  "${G[@]}" --mode simclr --dataset "$CIFAR" --arch siren --preset cpu --lr 5e-3 --max-steps 300 --budget-s 1000 \
    --seed $seed --label siren-cifar-cpu-lr5e-3
done > "$OUT/siren-cifar.log" 2>&1 &
wait
echo "done at $(date +%T)"
