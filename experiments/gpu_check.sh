#!/bin/bash
# One prepared check on a CUDA machine (run from the repository root): the torch-layer tests with CUDA as the default
# device, then reproduce runs (cpu preset unless the run's flags say otherwise, one training seed each, on CUDA).
# The benchmarks have their own --device (bench/README.md).
# usage: OUT=dir CIFAR=/path/to/cifar10-train-5k PY=python3 experiments/gpu_check.sh "ARGS1" "ARGS2" ...
#   each ARGS is one reproduce run's extra flags, e.g. "--dataset mnist5k --arch siren --encoder canonicalize=true"
# Results: $OUT/tests.txt, $OUT/results.jsonl (one JSON line per finished run), $OUT/runs.txt.
PY=${PY:-python3}; OUT=${OUT:?set OUT}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
step() { echo "== $(date +%T) $*" | tee -a "$OUT/runs.txt"; }

step "tests on CUDA"
timeout "${TEST_S:-150}" $PY -m pytest -q -p no:cacheprovider --noconftest -o addopts="" -x \
  ${TESTS:-tests/test_fit.py tests/test_canonical.py tests/test_simclr.py tests/test_supervised.py} \
  > "$OUT/tests.txt" 2>&1; echo "tests rc $?" | tee -a "$OUT/runs.txt"

n=0
for extra in "$@"; do
  n=$((n + 1)); extra=${extra//CIFAR/$CIFAR}
  step "run $n: $extra"
  # shellcheck disable=SC2086
  timeout "${RUN_S:-150}" $PY -m training.reproduce --preset cpu --seeds 1 --device cuda --cache-dir /tmp/cinr-runs \
    --json "/tmp/run$n.json" $extra >> "$OUT/runs.txt" 2>&1
  echo "run $n rc $?" | tee -a "$OUT/runs.txt"
  [ -f "/tmp/run$n.json" ] && $PY -c "import json,sys; d=json.load(open(sys.argv[1])); d['extra']=sys.argv[2]; \
print(json.dumps(d))" "/tmp/run$n.json" "$extra" >> "$OUT/results.jsonl"
done
step "done"
