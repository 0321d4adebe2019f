"""The current results table of docs/RESULTS.md and the README, from the merged JSONs in docs/results/.

    python3 experiments/current_table.py [--results docs/results] [--readme]
"""

import argparse
import json
import statistics as st
from pathlib import Path

PAPER = {("siren", "mnist"): 53.01, ("mfn", "mnist"): 42.97, ("siren", "cifar"): 36.01, ("mfn", "cifar"): 30.71}

# (arch, dataset label, dataset key for the paper, [(merged JSON name, the round that ran it), ...]): the current
# `cpu` preset's cell first (round 10: the weight-message GNN; round 11: MFNs of grey images at input_scale 1.5),
# then the previous presets' (rounds 7-9: the Relational Transformer; round 9 with the SIREN fit of colour images
# both presets take). The full table shows every cell that has run, the README's the first of each.
PREVIOUS = "previous preset"
CELLS = [
    ("SIREN", "MNIST-5k", "mnist", [("siren-mnist5k-preset4-independent", "round 10"),
                                    ("siren-mnist5k-preset2-independent", f"round 7, {PREVIOUS}")]),
    ("MFN", "MNIST-5k", "mnist", [("mfn-mnist5k-preset5-independent", "round 11"),
                                  ("mfn-mnist5k-preset4-independent", "round 10, input_scale 3.03"),
                                  ("mfn-mnist5k-preset2-independent", f"round 8, {PREVIOUS}")]),
    ("SIREN", "CIFAR-10-5k", "cifar", [("siren-cifar10-preset4-independent", "round 10"),
                                       ("siren-cifar10-preset3-independent", f"round 9, {PREVIOUS}")]),
    # 5,000 images drawn at random (class-stratified, seeded) from the 50k zip, not the folder's first 500 names per
    # class: CIFAR-10 as a held-out image sees it (docs/RESULTS.md, "Round 10", the CIFAR-10 cells)
    ("SIREN", "CIFAR-10, random 5k", "cifar", [("siren-cifar10rand5k-preset4-independent", "round 10")]),
    ("MFN", "CIFAR-10-5k", "cifar", [("mfn-cifar10-preset4-independent", "round 10"),
                                     ("mfn-cifar10-preset2-independent", f"round 8, {PREVIOUS}")]),
    ("SIREN", "Fashion-MNIST-5k", "fashion", [("siren-fashion5k-preset4-independent", "round 10"),
                                              ("siren-fashion5k-preset2-independent", f"round 7, {PREVIOUS}")]),
    ("MFN", "Fashion-MNIST-5k", "fashion", [("mfn-fashion5k-preset5-independent", "round 11"),
                                            ("mfn-fashion5k-preset2-independent", f"round 7, {PREVIOUS}")]),
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


def readme_table(results: Path) -> None:
    """The README's compact form: one column per cell (the first of its runs that exists), mean ± std only."""
    cells = []
    for arch, data, key, runs in CELLS:
        found = [(name, rnd) for name, rnd in runs if (results / f"{name}.json").exists()]
        name, rnd = found[0] if found else (None, "not run")
        cells.append(((arch, data, key, rnd), json.loads((results / f"{name}.json").read_text()) if name else None))

    def mean(values: list) -> str:
        v = [x for x in values if x is not None and x == x]
        if not v:
            return "not run"
        return f"{st.mean(v):.2f} ± {st.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"

    print("| | " + " | ".join(f"{arch} {data}" for (arch, data, *_), _ in cells) + " |")
    print("|---|" + "---|" * len(cells))
    print("| run | " + " | ".join(rnd for (*_, rnd), _ in cells) + " |")
    print("| training seeds (K) | " + " | ".join(str(len(r["contrastive_probe_acc"]) if r else 0) for _, r in cells)
          + " |")
    print("| the paper (Table 2, best run) | " + " | ".join(
        f"{PAPER[(arch.lower(), key)]:.2f}" if (arch.lower(), key) in PAPER else "–"
        for (arch, _, key, *_), _ in cells) + " |")
    for label, key, bold in (("CINR, SimCLR encoder", "contrastive_probe_acc", True),
                             ("the same encoder untrained", "random_encoder_probe_acc", False),
                             ("the raw weights", "raw_weights_probe_acc", False),
                             ("supervised, same encoder", "supervised_acc", False)):
        values = [mean(r[key][:1] if key == "raw_weights_probe_acc" else r[key]) if r else "not run"
                  for _, r in cells]
        print(f"| {'**' + label + '**' if bold else label} | "
              + " | ".join(f"**{v}**" if bold else v for v in values) + " |")
    psnr = [f"{r['psnr_mean']:.1f}" if r else "not run" for _, r in cells]
    print("| INRs' mean PSNR (dB) | " + " | ".join(psnr) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="docs/results")
    parser.add_argument("--readme", action="store_true", help="the README's compact table")
    args = parser.parse_args()
    results = Path(args.results)
    if args.readme:
        readme_table(results)
        return
    print("| cell | preset | contrastive probe | paper | supervised | random-encoder probe | raw-weights probe "
          "| PSNR dB | K |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arch, data, key, runs in CELLS:
        for name, rnd in runs:
            if (results / f"{name}.json").exists():
                print(row(results, arch, data, key, name, rnd))
    for cell in EXTENSION:
        print(row(results, *cell))


if __name__ == "__main__":
    main()
