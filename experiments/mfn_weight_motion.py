"""How far a fit moves each MFN weight tensor from the weights it started at (docs/RESULTS.md, "Round 11").

    python experiments/mfn_weight_motion.py                      # MNIST-5k, the paper's input_scale 3.03
    python experiments/mfn_weight_motion.py --input-scale 1.5    # the cpu preset's since round 11

The INRs are the `cpu` preset's MFN fit of MNIST-5k (2 seeds per image, inr.DEFAULT_FIT, anti-aliased, independent
initialisation), read from runs/cache (fitted there on first use). For the first `--inrs` of them it prints, per
tensor, the spread of the initial weights (std), the root mean square of (fitted - initial), and their ratio: a
ratio well under 1 means the fit leaves that tensor near its random draw.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inr  # noqa: E402
from inr.fit import independent_init_seed  # noqa: E402
from training.data import fit_inr_dataset  # noqa: E402
from training.presets import PRESETS  # noqa: E402
from training.reproduce import spec_for  # noqa: E402
from training.sources import load_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-scale", type=float, default=None, help="default: the paper's (3.03)")
    parser.add_argument("--inrs", type=int, default=200)
    parser.add_argument("--cache-dir", default="runs/cache")
    args = parser.parse_args()
    preset = PRESETS["cpu"]
    images = load_images("mnist5k")
    spec = spec_for("mfn", images)
    if args.input_scale is not None:
        spec = dataclasses.replace(spec, input_scale=args.input_scale)
    ds = fit_inr_dataset(images, spec, preset.seeds_for("mfn"), steps=preset.fit_steps["mfn"],
                         lr=preset.fit_lr_for("mfn", images.channels), anti_alias=True, shared_init=False,
                         cache_dir=args.cache_dir)
    n = min(args.inrs, len(ds))
    seeds = [independent_init_seed(int(i), int(s)) for i, s in zip(ds.image_index[:n], ds.seed[:n], strict=True)]
    start = inr.init(spec, n, seeds=seeds, grid_size=images.size)
    print(f"{n} MFN INRs of mnist5k, input_scale {spec.input_scale}, PSNR {float(ds.psnr[:n].mean()):.2f} dB")
    for name, initial in start.items():
        moved = (ds.params[name][:n] - initial).square().mean().sqrt()
        spread = initial.std()
        print(f"{name:16s} initial std {spread:.3f}   moved rms {moved:.3f}   ratio {moved / spread:.3f}")


if __name__ == "__main__":
    main()
