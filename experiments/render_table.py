"""Markdown rows from the merged JSONs (so that RESULTS.md carries the numbers exactly as run)."""

import json
import os
import statistics as st
from pathlib import Path


def fmt(v):
    v = [x for x in v if x is not None]
    if not v:
        return "not run"
    m = st.mean(v)
    s = st.stdev(v) if len(v) > 1 else 0.0
    return f"{m:.2f} ± {s:.2f} ({', '.join(f'{x:.2f}' for x in v)})"


rows = [
    ("MFN, independent init (paper's setting)", "mfn-mnist5k-independent"),
    ("MFN, shared init", "mfn-mnist5k-shared"),
    ("MFN, independent init, + probe features at 16 points (extension)", "mfn-mnist5k-probe16-independent"),
    ("MFN, independent init, SimCLR 1,500 steps, supervised 1,000 steps", "mfn-mnist5k-simclr1500-independent"),
    ("SIREN, independent init (paper's setting)", "siren-mnist5k-independent"),
    ("SIREN, shared init", "siren-mnist5k-shared"),
]
print("| setting | K | contrastive probe | supervised | random-encoder probe | raw-weights probe | PSNR dB | wall s |")
print("|---|---|---|---|---|---|---|---|")
for name, cell in rows:
    p = Path(os.environ.get("CINR_RUNS", "runs")) / "merged" / f"{cell}.json"
    if not p.exists():
        print(f"| {name} | 0 | not run | not run | not run | not run | | |")
        continue
    r = json.loads(p.read_text())
    k = len(r["contrastive_probe_acc"])
    print(
        f"| {name} | {k} | {fmt(r['contrastive_probe_acc'])} | {fmt(r['supervised_acc'])} | "
        f"{fmt(r['random_encoder_probe_acc'])} | {r['raw_weights_probe_acc'][0]:.2f} | {r['psnr_mean']:.1f} | "
        f"{r['wall_seconds']:.0f} |"
    )
