"""Held-out CIFAR-10 images for `training.reproduce --test-dataset`: images of the 50,000-image training zip that the
5,000-image folder does not hold, `--per-class` of each class (seeded), written as an image folder.

    python experiments/heldout_cifar.py --out runs/cifar-heldout --per-class 200
    python -m training.reproduce --dataset ../shared/data/cifar10-train-5k --test-dataset runs/cifar-heldout ...

The 5k folder is a subset of the zip (../shared/data/README.md); an image is held out only if neither its file name
nor its pixels occur in the folder.
"""

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image


def pixel_hash(data: bytes) -> str:
    """sha256 of a PNG's decoded RGB pixels (two encodings of one image hash alike)."""
    with Image.open(io.BytesIO(data)) as image:
        return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", default="../shared/data/cifar10-train-50k.zip")
    parser.add_argument("--folder", default="../shared/data/cifar10-train-5k")
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    folder, out = Path(args.folder), Path(args.out)
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} exists and is not empty")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    taken = [p for c in classes for p in (folder / c).glob("*.png")]
    taken_names, taken_pixels = {p.name for p in taken}, {pixel_hash(p.read_bytes()) for p in taken}
    rng = np.random.default_rng(args.seed)
    total = 0
    with zipfile.ZipFile(args.zip) as archive:
        by_class: dict[str, list[str]] = {c: [] for c in classes}
        for name in archive.namelist():
            parts = PurePosixPath(name).parts  # cifar10-train/<class>/<file>.png
            if len(parts) == 3 and parts[1] in by_class and parts[2].endswith(".png") and parts[2] not in taken_names:
                by_class[parts[1]].append(name)
        for c in classes:
            (out / c).mkdir(parents=True)
            kept = 0
            for name in rng.permutation(sorted(by_class[c])):
                data = archive.read(name)
                if pixel_hash(data) in taken_pixels:
                    continue
                (out / c / PurePosixPath(name).name).write_bytes(data)
                kept += 1
                if kept == args.per_class:
                    break
            if kept < args.per_class:
                sys.exit(f"class {c}: only {kept} held-out images, {args.per_class} asked")
            total += kept
    print(f"{total} held-out images ({args.per_class} per class) from {args.zip}, none named or pixel-equal to an "
          f"image of {args.folder}, in {out}")


if __name__ == "__main__":
    main()
