"""The built-in Fashion-MNIST sources, read from Debian's package dataset-fashion-mnist (`make` installs it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.sources import FASHION_MNIST_CLASSES, InvalidImages, load_builtin, load_images


@pytest.fixture(scope="module")
def full():
    return load_builtin("fashion-mnist")


def test_it_loads_the_packages_60000_10000_split(full):
    assert full.images.shape == (70000, 1, 28, 28) and full.images.dtype == torch.float32
    assert full.images.min() == 0.0 and full.images.max() == 1.0
    assert len(full.train_index) == 60000 and len(full.test_index) == 10000
    assert torch.equal(full.train_index, torch.arange(60000))  # the train-* file first, as the package ships it
    assert np.bincount(full.labels[full.test_index].numpy()).tolist() == [1000] * 10
    assert full.class_names == FASHION_MNIST_CLASSES and full.class_names[9] == "Ankle boot"
    assert full.meta["source"] == "builtin:fashion-mnist"


def test_it_samples_5000_train_and_1000_test_images_stratified_from_each_split(full):
    small = load_builtin("fashion-mnist5k")
    assert small.num_images == 6000 and len(small.train_index) == 5000 and len(small.test_index) == 1000
    assert np.bincount(small.labels[small.train_index].numpy()).tolist() == [500] * 10
    assert np.bincount(small.labels[small.test_index].numpy()).tolist() == [100] * 10
    # every image is one of the package's, on the same side of the split (train images never come from t10k)
    train_rows = {full.images[i].numpy().tobytes() for i in full.train_index[:60000].tolist()}
    assert all(small.images[i].numpy().tobytes() in train_rows for i in small.train_index[:50].tolist())
    assert not any(small.images[i].numpy().tobytes() in train_rows for i in small.test_index[:50].tolist())
    assert torch.equal(small.images, load_images("fashion-mnist5k").images)  # fixed, by name


def test_it_names_the_debian_package_when_the_files_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("CINR_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(InvalidImages, match="needs Debian's package dataset-fashion-mnist"):
        load_builtin("fashion-mnist5k")
