"""Markdown rows from the merged JSONs (so that RESULTS.md carries the numbers exactly as run)."""

import json
import os
from pathlib import Path

from current_table import PAPER, fmt  # one formatter and one copy of the paper's numbers

rows = [
    ("SIREN, MNIST-5k, weights only (paper's setting)", "siren-mnist5k-independent"),
    ("MFN, MNIST-5k, weights only (paper's setting)", "mfn-mnist5k-independent"),
    ("SIREN, CIFAR-10 5k, weights only (paper's setting)", "siren-cifar10-independent"),
    ("MFN, CIFAR-10 5k, weights only (paper's setting)", "mfn-cifar10-independent"),
    ("SIREN, MNIST-5k, weights only, canonical sign/phase/scale", "siren-mnist5k-canonical-independent"),
    ("MFN, MNIST-5k, weights only, canonical sign/phase/scale", "mfn-mnist5k-canonical-independent"),
    ("SIREN, CIFAR-10 5k, weights only, canonical sign/phase/scale", "siren-cifar10-canonical-independent"),
    ("MFN, CIFAR-10 5k, weights only, canonical sign/phase/scale", "mfn-cifar10-canonical-independent"),
    ("SIREN, MNIST-5k, weights only, canonical, no augmentation (seed pairs only)",
     "siren-mnist5k-canonical-noaug-independent"),
    ("SIREN, CIFAR-10 5k, weights only, canonical, no augmentation (seed pairs only)",
     "siren-cifar10-canonical-noaug-independent"),
    ("MFN, MNIST-5k, weights only, canonical, no augmentation (seed pairs only)",
     "mfn-mnist5k-canonical-noaug-independent"),
    ("MFN, CIFAR-10 5k, weights only, canonical, no augmentation (seed pairs only)",
     "mfn-cifar10-canonical-noaug-independent"),
    ("SIREN, CIFAR-10 5k, weights only, canonical, alone on the machine, 2 threads (round 4)",
     "siren-cifar10-canonical-alone-independent"),
    ("SIREN, CIFAR-10 5k, weights only, canonical, + colour and intensity jitter (p 0.8 each, round 4)",
     "siren-cifar10-canonical-colour-independent"),
    ("SIREN, MNIST-5k, weights only, canonical, default-size encoder (round 4)",
     "siren-mnist5k-canonical-enc64-independent"),
    ("MFN, MNIST-5k, weights only, canonical, default-size encoder (round 4)",
     "mfn-mnist5k-canonical-enc64-independent"),
    ("SIREN, CIFAR-10 5k, weights only, canonical, default-size encoder (round 4)",
     "siren-cifar10-canonical-enc64-independent"),
    ("MFN, CIFAR-10 5k, weights only, canonical, default-size encoder (round 4)",
     "mfn-cifar10-canonical-enc64-independent"),
    ("SIREN, MNIST-5k, weights only, canonical, default-size encoder, fit lr 2e-4 (round 5)",
     "siren-mnist5k-canonical-enc64-fitlr2e-4-independent"),
    ("SIREN, MNIST-5k, weights only, canonical, default-size encoder, fit lr 1e-4 (round 5)",
     "siren-mnist5k-canonical-enc64-fitlr1e-4-independent"),
    ("SIREN, MNIST-5k, weights only, canonical, default-size encoder, fit lr 2e-4, no augmentation (round 5)",
     "siren-mnist5k-canonical-enc64-fitlr2e-4-noaug-independent"),
    ("SIREN, MNIST-5k, + probe features at 128 points, SimCLR lr 5e-3 (extension)",
     "siren-mnist5k-probe128-lr5e-3-independent"),
    ("MFN, MNIST-5k, + probe features at 128 points, SimCLR lr 5e-3 (extension)",
     "mfn-mnist5k-probe128-lr5e-3-independent"),
    ("SIREN, CIFAR-10 5k, + probe features at 128 points, SimCLR lr 5e-3 (extension)",
     "siren-cifar10-probe128-lr5e-3-independent"),
    ("MFN, CIFAR-10 5k, + probe features at 128 points, SimCLR lr 5e-3 (extension)",
     "mfn-cifar10-probe128-lr5e-3-independent"),
    ("SIREN, MNIST-5k, + probe features at 64 points, SimCLR lr 5e-3 (extension)",
     "siren-mnist5k-probe64-lr5e-3-independent"),
    ("SIREN, CIFAR-10 5k, + probe features at 64 points, SimCLR lr 5e-3 (extension)",
     "siren-cifar10-probe64-lr5e-3-independent"),
    ("MFN, MNIST-5k, + probe features at 16 points (extension)", "mfn-mnist5k-probe16-independent"),
    ("MFN, MNIST-5k, SimCLR 1,500 steps, supervised 1,000 steps", "mfn-mnist5k-simclr1500-independent"),
    ("MFN, MNIST-5k, shared init (not the paper's setting)", "mfn-mnist5k-shared"),
    ("SIREN, MNIST-5k, shared init (not the paper's setting)", "siren-mnist5k-shared"),
    ("SIREN, MNIST-5k, shared init, canonical, default-size encoder (round 6)", "siren-mnist5k-canonical-enc64-shared"),
    ("SIREN, MNIST-5k, shared init, canonical, default-size encoder, fit lr 2e-4, no augmentation (round 6)",
     "siren-mnist5k-canonical-enc64-fitlr2e-4-noaug-shared"),
    ("MFN, MNIST-5k, shared init, canonical, default-size encoder (round 6)", "mfn-mnist5k-canonical-enc64-shared"),
    ("SIREN, CIFAR-10 5k, shared init, canonical, default-size encoder (round 6)",
     "siren-cifar10-canonical-enc64-shared"),
]
print("| setting | K | contrastive probe | paper | supervised | random-encoder probe | raw-weights probe | PSNR dB "
      "| wall s |")
print("|---|---|---|---|---|---|---|---|---|")
for name, cell in rows:
    p = Path(os.environ.get("CINR_RUNS", "runs")) / "merged" / f"{cell}.json"
    if not p.exists():
        print(f"| {name} | 0 | not run | | not run | not run | not run | | |")
        continue
    r = json.loads(p.read_text())
    k = len(r["contrastive_probe_acc"])
    arch, data = cell.split("-")[:2]  # e.g. siren, mnist5k
    print(
        f"| {name} | {k} | {fmt(r['contrastive_probe_acc'])} | {PAPER[(arch, data[:5])]:.2f} | "
        f"{fmt(r['supervised_acc'])} | "
        f"{fmt(r['random_encoder_probe_acc'])} | {r['raw_weights_probe_acc'][0]:.2f} | {r['psnr_mean']:.1f} | "
        f"{r['wall_seconds']:.0f} |"
    )
