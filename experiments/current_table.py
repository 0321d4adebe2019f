"""The current results table of docs/RESULTS.md and the README, from the merged JSONs in docs/results/.

    python3 experiments/current_table.py [--results docs/results]
"""

import argparse
import json
import statistics as st
from pathlib import Path

PAPER = {("siren", "mnist"): 53.01, ("mfn", "mnist"): 42.97, ("siren", "cifar"): 36.01, ("mfn", "cifar"): 30.71}

# (arch, dataset label, dataset key for the paper, merged JSON name, which preset ran it)
CELLS = [
    ("SIREN", "MNIST-5k", "mnist", "siren-mnist5k-preset2-independent", "round 7"),
    ("MFN", "MNIST-5k", "mnist", "mfn-mnist5k-canonical-enc64-independent", "round 4"),
    ("SIREN", "CIFAR-10-5k", "cifar", "siren-cifar10-canonical-enc64-independent", "round 4"),
    ("MFN", "CIFAR-10-5k", "cifar", "mfn-cifar10-canonical-enc64-independent", "round 4"),
    ("SIREN", "Fashion-MNIST-5k", "fashion", "siren-fashion5k-preset2-independent", "round 7"),
    ("MFN", "Fashion-MNIST-5k", "fashion", "mfn-fashion5k-preset2-independent", "round 7"),
]
EXTENSION = [
    ("SIREN", "MNIST-5k", "mnist", "siren-mnist5k-probe128-lr5e-3-independent", "round 2, + probe features"),
    ("MFN", "MNIST-5k", "mnist", "mfn-mnist5k-probe128-lr5e-3-independent", "round 2, + probe features"),
    ("SIREN", "CIFAR-10-5k", "cifar", "siren-cifar10-probe128-lr5e-3-independent", "round 2, + probe features"),
    ("MFN", "CIFAR-10-5k", "cifar", "mfn-cifar10-probe128-lr5e-3-independent", "round 2, + probe features"),
]


def fmt(values: list) -> str:
    v = [x for x in values if x is not None and x == x]  # None or NaN: not run
    if not v:
        return "not run"
    std = st.stdev(v) if len(v) > 1 else 0.0
    return f"{st.mean(v):.2f} ± {std:.2f} ({', '.join(f'{x:.2f}' for x in v)})"


def row(results: Path, arch: str, data: str, key: str, name: str, preset: str) -> str:
    paper = PAPER.get((arch.lower(), key))
    paper_text = f"{paper:.2f}" if paper else "–"
    path = results / f"{name}.json"
    if not path.exists():
        return f"| {arch} {data} | {preset} | not run | {paper_text} | not run | not run | not run | | |"
    r = json.loads(path.read_text())
    k = len(r["contrastive_probe_acc"])
    return (f"| {arch} {data} | {preset} | {fmt(r['contrastive_probe_acc'])} | {paper_text} | "
            f"{fmt(r['supervised_acc'])} | {fmt(r['random_encoder_probe_acc'])} | "
            f"{r['raw_weights_probe_acc'][0]:.2f} | {r['psnr_mean']:.1f} | {k} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="docs/results")
    args = parser.parse_args()
    results = Path(args.results)
    print("| cell | preset | contrastive probe | paper | supervised | random-encoder probe | raw-weights probe "
          "| PSNR dB | K |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cell in CELLS:
        print(row(results, *cell))
    for cell in EXTENSION:
        print(row(results, *cell))


if __name__ == "__main__":
    main()
