"""Held-out Fashion-MNIST images for `training.reproduce --test-dataset`: images of the package's test split that
the built-in `fashion-mnist5k` does not hold, `--per-class` of each class (seeded), written as an IDX pair.

    python experiments/heldout_fashion.py --out runs/fashion-heldout --per-class 200
    python -m training.reproduce --dataset fashion-mnist5k \
        --test-dataset runs/fashion-heldout/heldout-images-idx3-ubyte.gz ...

IDX, not an image folder: the class "T-shirt/top" cannot be a folder name; label ids match the training set's
classes by number (`ImageSet.with_classes`).
"""

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.sources import load_builtin  # noqa: E402


def write_idx(out: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """images uint8 [N, 28, 28], labels uint8 [N] -> heldout-{images-idx3,labels-idx1}-ubyte.gz in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    with gzip.open(out / "heldout-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, n, h, w) + images.tobytes())
    with gzip.open(out / "heldout-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x00000801, n) + labels.tobytes())


def as_bytes(images: torch.Tensor) -> np.ndarray:
    """float [N, 1, H, W] in [0, 1] -> uint8 [N, H, W]."""
    return (images[:, 0] * 255).round().to(torch.uint8).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    full, small = load_builtin("fashion-mnist"), load_builtin("fashion-mnist5k")
    pixels = as_bytes(full.images)  # [N, 28, 28] uint8, as in the IDX files
    taken = {image.tobytes() for image in as_bytes(small.images)}
    labels = full.labels.numpy()
    rng = np.random.default_rng(args.seed)
    chosen = []
    for c in range(len(full.class_names)):
        pool = [i for i in full.test_index.numpy() if labels[i] == c and pixels[i].tobytes() not in taken]
        chosen += rng.permutation(pool)[:args.per_class].tolist()
    chosen = np.sort(np.array(chosen))
    write_idx(Path(args.out), pixels[chosen], labels[chosen].astype(np.uint8))
    print(f"{len(chosen)} held-out images ({args.per_class} per class) from Fashion-MNIST's test split, none "
          f"pixel-equal to an image of fashion-mnist5k, in {args.out}")


if __name__ == "__main__":
    main()
