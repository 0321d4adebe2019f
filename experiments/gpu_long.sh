#!/bin/bash
# One prepared call on a lent GPU (round 6): is weights-only MNIST-5k bound by training compute?
# The best CPU recipe for SIREN MNIST-5k (fit lr 2e-4, seed pairs without augmentations; 38.92 ± 0.51 at K = 3 with
# 300 steps x 64 pairs) trained for a fixed time budget with batches of 256 pairs instead, then the same encoder
# supervised, then MFN MNIST-5k (the cpu preset's fit) with the same recipe. Runs go one at a time (side by side they
# were 3-4x slower each, RESULTS section 2b), most important first, each under its own time limit, so a run cut
# short by the call's limit costs only the runs after it.
# Call 2 (PART=2) ran the same SIREN and MFN SimCLR runs with the default augmentations.
# usage: [PART=2] OUT=dir PY=python3 BUDGET_S=55 RUN_S=150 experiments/gpu_long.sh
#   (a CPU check of the plumbing: DEVICE=cpu DATA=digits BATCH=8 BUDGET_S=2 CACHE=/tmp/c OUT=/tmp/o PY=.venv/bin/python)
# Results: $OUT/long.jsonl (one JSON line per finished run, from experiments/gpu_scale.py) and $OUT/long.log.
PY=${PY:-python3}; OUT=${OUT:?set OUT}; B=${BUDGET_S:-55}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
AUG=("$PY" experiments/gpu_scale.py --device "${DEVICE:-cuda}" --cache-dir "${CACHE:-/tmp/cinr-runs}"
     --out "$OUT/long.jsonl" --preset cpu --batch "${BATCH:-256}" --budget-s "$B")
NOAUG=("${AUG[@]}" --augment rotation_prob=0 --augment scale_prob=0 --augment translation_prob=0
       --augment noise_prob=0 --augment dropout_prob=0)
SIREN=(--dataset "${DATA:-mnist5k}" --arch siren --fit-lr 2e-4)
MFN=(--dataset "${DATA:-mnist5k}" --arch mfn)
run() { echo "== $(date +%T) ${*:2}"; timeout "${RUN_S:-150}" "$@"; echo "== rc $?"; }

{
  if [ "${PART:-1}" = 2 ]; then
    # Part 1 learned the pretext task without augmentations (top-1 0.78-0.90 of 511) and its probe stayed at 40 %:
    # does the harder task with augmentations carry the class at this scale?
    run "${AUG[@]}" "${SIREN[@]}" --mode simclr --seed 0 --label siren-mnist-aug-b256-seed0
    run "${AUG[@]}" "${MFN[@]}" --mode simclr --seed 0 --label mfn-mnist-aug-b256-seed0
  else
    run "${NOAUG[@]}" "${SIREN[@]}" --mode fit
    run "${NOAUG[@]}" "${MFN[@]}" --mode fit
    run "${NOAUG[@]}" "${SIREN[@]}" --mode simclr --seed 0 --label siren-mnist-noaug-b256-seed0
    run "${NOAUG[@]}" "${SIREN[@]}" --mode supervised --seed 0 --label siren-mnist-noaug-b256-supervised
    run "${NOAUG[@]}" "${SIREN[@]}" --mode simclr --seed 1 --label siren-mnist-noaug-b256-seed1
    run "${NOAUG[@]}" "${SIREN[@]}" --mode simclr --seed 2 --label siren-mnist-noaug-b256-seed2
    run "${NOAUG[@]}" "${MFN[@]}" --mode simclr --seed 0 --label mfn-mnist-noaug-b256-seed0
    run "${NOAUG[@]}" "${SIREN[@]}" --mode simclr --seed 0 --seeds-per-image 8 \
      --label siren-mnist-noaug-b256-8perimage-seed0
  fi
  echo "== done $(date +%T)"
} > "$OUT/long.log" 2>&1
