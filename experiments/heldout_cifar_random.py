"""Held-out CIFAR-10 images for the random-5k cell: `--per-class` images of the 50,000-image zip (seeded) that the
training draw of `training.reproduce --dataset <zip> --max-train-images N --test-dataset ...` does not hold, by index
nor by pixels, written as an image folder of lossless PNGs.

    python experiments/heldout_cifar_random.py --out runs/cifar-heldout-random --per-class 200
    python -m training.reproduce --dataset ../shared/data/cifar10-train-50k.zip --max-train-images 4000 \
        --test-dataset runs/cifar-heldout-random ...

Unlike experiments/heldout_cifar.py (images the 41-subcategory 5k folder lacks), these come from the same
distribution as the training draw, so the check measures what tuning on a test split can cost, not a shift of data.
"""

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.reproduce import _all_as, _cap
from training.sources import load_images


def as_bytes(images) -> np.ndarray:
    """[N, C, H, W] floats in [0, 1] -> [N, H, W, C] uint8, exact for images read from 8-bit PNGs."""
    return (images * 255.0).round().clamp(0, 255).to(dtype=torch.uint8).permute(0, 2, 3, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", default="../shared/data/cifar10-train-50k.zip")
    parser.add_argument("--max-train-images", type=int, default=4000, help="the training draw to stay out of")
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} exists and is not empty")
    images = load_images(args.zip)
    # The draw training.reproduce makes with --test-dataset: every image of the zip in the train split, then capped.
    drawn = _cap(_all_as(images, train=True), args.max_train_images, 0)
    pixels = as_bytes(images.images)  # [N, H, W, C] uint8: the importer's float images are byte / 255
    hashes = [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels]
    drawn_hashes = {hashlib.sha256(p.tobytes()).hexdigest() for p in as_bytes(drawn.images)}
    rng = np.random.default_rng(args.seed)
    labels = images.labels.numpy()
    total = 0
    for c, name in enumerate(images.class_names):
        (out / name).mkdir(parents=True)
        kept = 0
        for i in rng.permutation(np.flatnonzero(labels == c)):
            if hashes[i] in drawn_hashes:
                continue  # in the training draw (or pixel-equal to an image of it)
            Image.fromarray(pixels[i]).save(out / name / f"{i:05d}.png")
            kept += 1
            if kept == args.per_class:
                break
        if kept < args.per_class:
            sys.exit(f"class {name}: only {kept} held-out images, {args.per_class} asked")
        total += kept
    print(f"{total} held-out images ({args.per_class} per class) from {args.zip}, none in or pixel-equal to an image "
          f"of its {drawn.num_images}-image training draw, in {out}")


if __name__ == "__main__":
    main()
