"""How far the 5k CIFAR-10 folder's own test split is from other CIFAR-10 images: subcategory coverage (the file
names' prefixes, e.g. "aeroplane_s_000004.png") and a linear probe on raw pixels, trained on the folder's train split
and scored on its test split and on held-out images (experiments/heldout_cifar.py).

    python experiments/cifar_subset_shift.py --heldout runs/cifar-heldout
"""

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.probe import linear_probe  # noqa: E402
from training.reproduce import load_images  # noqa: E402


def flat(images):
    """[N, C, H, W] -> [N, C * H * W]."""
    return images.reshape(images.shape[0], -1)


def subcategory(name: str) -> str:
    return re.sub(r"_s_\d+\.png$", "", name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="../shared/data/cifar10-train-5k")
    parser.add_argument("--heldout", required=True)
    args = parser.parse_args()
    seen = {subcategory(p.name) for p in Path(args.folder).glob("*/*.png")}
    held = [subcategory(p.name) for p in Path(args.heldout).glob("*/*.png")]
    print(f"subcategories: {len(seen)} in {args.folder}, {len(set(held))} in {args.heldout}; "
          f"{sum(h in seen for h in held)} of {len(held)} held-out images from one the folder has")
    five = load_images(args.folder)
    other = load_images(args.heldout).with_classes(five.class_names)
    train_x, train_y = flat(five.images[five.train_index]), five.labels[five.train_index]
    for name, x, y in (("the folder's test split", flat(five.images[five.test_index]), five.labels[five.test_index]),
                       ("held-out images", flat(other.images), other.labels)):
        accuracy = linear_probe(train_x, train_y, x, y, five.class_names).accuracy
        print(f"raw-pixel linear probe on {name} ({len(y)} images): {accuracy:.2f} %")


if __name__ == "__main__":
    main()
