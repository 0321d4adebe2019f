"""Image sources: built-in sets and their fixed splits, and every importer on small files written here."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.sources import (
    ImageSet,
    InvalidImages,
    load_builtin,
    load_images,
    read_cifar_batches,
    read_idx,
    read_image_folder,
    read_zip,
    stratified_split,
)

# --------------------------------------------------------------------------------------------------------------------
# helpers that write small image sets


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def grey(value: int, size: tuple[int, int] = (5, 4)) -> np.ndarray:
    """uint8 [H, W] with a gradient so that pixel order matters."""
    h, w = size
    return ((np.arange(h * w).reshape(h, w) * 3 + value) % 256).astype(np.uint8)


def write_folder(root: Path, per_class: int = 5, classes: tuple[str, ...] = ("zebra", "ant", "cat"),
                 rgb: bool = False) -> dict[str, np.ndarray]:
    """root/<class>/<i>.png; returns relative path -> the uint8 pixels written."""
    written = {}
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = grey(10 * ci + i)
            if rgb:
                pixels = np.stack([pixels, 255 - pixels, pixels // 2], axis=-1)
            (root / c / f"{i}.png").write_bytes(png_bytes(pixels))
            written[f"{c}/{i}.png"] = pixels
    return written


def write_zip(path: Path, members: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, data)
    return path


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


# --------------------------------------------------------------------------------------------------------------------
# built-ins and the split


def test_it_loads_digits_scaled_with_a_fixed_stratified_split():
    a, b = load_builtin("digits"), load_builtin("digits")
    assert a.images.shape == (1797, 1, 8, 8) and a.images.dtype == torch.float32
    assert a.images.min() == 0.0 and a.images.max() == 1.0
    assert a.class_names == [str(d) for d in range(10)]
    assert torch.equal(a.train_index, b.train_index) and torch.equal(a.test_index, b.test_index)
    assert len(a.train_index) + len(a.test_index) == 1797
    assert np.intersect1d(a.train_index, a.test_index).size == 0
    train_share = np.bincount(a.labels[a.train_index], minlength=10) / np.bincount(a.labels, minlength=10)
    assert np.all(np.abs(train_share - 0.8) < 0.02)


def test_it_loads_mnist5k_with_a_4000_1000_split_100_per_class():
    s = load_builtin("mnist5k")
    assert s.images.shape == (5000, 1, 28, 28) and 0.0 <= s.images.min() and s.images.max() == 1.0
    assert len(s.train_index) == 4000 and len(s.test_index) == 1000
    assert np.bincount(s.labels[s.test_index].numpy()).tolist() == [100] * 10
    assert torch.equal(s.test_index, load_images("mnist5k").test_index)


def test_it_splits_every_class_in_proportion_and_keeps_singletons_in_train():
    labels = np.array([0] * 10 + [1] * 20 + [2])
    train, test = stratified_split(labels, 0.3, seed=1)
    assert np.bincount(labels[test], minlength=3).tolist() == [3, 6, 0]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(31))
    train2, _ = stratified_split(labels, 0.3, seed=2)
    assert not np.array_equal(train, train2)


def test_it_takes_subsets_and_relabels_by_class_name():
    digits = load_builtin("digits")
    sub = digits.subset([digits.test_index[0], digits.train_index[0], digits.train_index[1]])
    assert sub.num_images == 3 and sub.test_index.tolist() == [0] and sub.train_index.tolist() == [1, 2]
    assert torch.equal(sub.images[0], digits.images[digits.test_index[0]])
    names = [str(d) for d in reversed(range(10))] + ["extra"]
    relabelled = sub.with_classes(names)
    assert [relabelled.class_names[i] for i in relabelled.labels] == [sub.class_names[i] for i in sub.labels]
    with pytest.raises(InvalidImages, match=r"classes \['0', '1'"):
        digits.with_classes([str(d) for d in range(2, 10)])


def test_it_matches_unnamed_label_ids_to_named_classes_by_number():
    # IDX files name their classes by label value; held-out Fashion-MNIST images can come no other way
    names = ["T-shirt/top", "Trouser", "Pullover"]
    ids = ImageSet(name="heldout", images=torch.zeros(3, 1, 4, 4), labels=torch.tensor([0, 1, 0]),
                   class_names=["0", "2"], train_index=torch.zeros(0, dtype=torch.int64), test_index=torch.arange(3))
    relabelled = ids.with_classes(names)
    assert [relabelled.class_names[i] for i in relabelled.labels] == ["T-shirt/top", "Pullover", "T-shirt/top"]
    with pytest.raises(InvalidImages, match="not among"):  # an id past the named classes
        ids.with_classes(names[:2])


def test_it_rejects_an_unknown_builtin_and_a_missing_path(tmp_path):
    with pytest.raises(InvalidImages, match="unknown built-in"):
        load_builtin("imagenet")
    with pytest.raises(InvalidImages, match="no such file"):
        load_images(str(tmp_path / "nope"))


def test_it_validates_an_image_set():
    with pytest.raises(InvalidImages, match="both in the train and the test"):
        ImageSet("x", torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=torch.long), ["a"], [0, 1], [1, 2])
    with pytest.raises(InvalidImages, match="labels must lie"):
        ImageSet("x", torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2]), ["a", "b"], [0, 1], [2])


# --------------------------------------------------------------------------------------------------------------------
# image folders and zips


def test_it_reads_an_image_folder_with_sorted_classes_and_exact_pixels(tmp_path):
    written = write_folder(tmp_path / "set")
    (tmp_path / "set" / "ant" / ".DS_Store").write_bytes(b"junk")
    s = read_image_folder(tmp_path / "set")
    assert s.class_names == ["ant", "cat", "zebra"]
    assert s.images.shape == (15, 1, 5, 4)
    i = s.meta["files"].index("zebra/3.png")
    assert s.labels[i] == 2
    assert torch.equal(s.images[i, 0], torch.from_numpy(written["zebra/3.png"].astype(np.float32) / 255))
    assert np.bincount(s.labels[s.test_index].numpy()).tolist() == [1, 1, 1]
    assert load_images(tmp_path / "set").images.shape == s.images.shape


def test_it_reads_rgb_as_three_channels_and_keeps_a_given_train_test_split(tmp_path):
    write_folder(tmp_path / "set" / "train", rgb=True)
    write_folder(tmp_path / "set" / "test", per_class=2, rgb=True)
    s = read_image_folder(tmp_path / "set")
    assert s.images.shape == (21, 3, 5, 4)
    assert len(s.train_index) == 15 and len(s.test_index) == 6
    assert all(s.meta["files"][i].startswith("test/") for i in s.test_index)


def test_it_keeps_each_file_name_with_its_image_in_a_subset(tmp_path):
    written = write_folder(tmp_path / "set")
    s = read_image_folder(tmp_path / "set")
    part = s.subset([14, 3, 7])
    assert part.meta["files"] == [s.meta["files"][i] for i in (14, 3, 7)]
    for row, name in enumerate(part.meta["files"]):
        assert torch.equal(part.images[row, 0], torch.from_numpy(written[name].astype(np.float32) / 255))


def test_it_reads_jpeg_bmp_and_gif(tmp_path):
    pixels = grey(0)
    for c, fmt, ext in (("a", "JPEG", "jpg"), ("b", "BMP", "bmp"), ("c", "GIF", "gif"), ("d", "PNG", "PNG")):
        (tmp_path / c).mkdir()
        (tmp_path / c / f"x.{ext}").write_bytes(png_bytes(pixels, fmt))
    s = read_image_folder(tmp_path)
    assert s.class_names == ["a", "b", "c", "d"] and s.images.shape[2:] == (5, 4)


def test_it_names_two_files_of_different_sizes(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "cat" / "big.png").write_bytes(png_bytes(grey(0, (6, 6))))
    with pytest.raises(InvalidImages, match=r"differ in size: ant/0.png is 4x5, cat/big.png is 6x6"):
        read_image_folder(tmp_path)


def test_it_names_two_files_of_different_modes(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "cat" / "rgb.png").write_bytes(png_bytes(np.zeros((5, 4, 3), np.uint8)))
    with pytest.raises(InvalidImages, match=r"differ in mode: ant/0.png is grey .*cat/rgb.png is colour"):
        read_image_folder(tmp_path)


def test_it_rejects_a_corrupt_image_by_name(tmp_path):
    write_folder(tmp_path)
    good = (tmp_path / "cat" / "1.png").read_bytes()
    (tmp_path / "cat" / "1.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(InvalidImages, match=r"cat/1.png: not a readable image"):
        read_image_folder(tmp_path)


def test_it_rejects_non_images_and_loose_files_in_a_folder(tmp_path):
    write_folder(tmp_path / "a")
    (tmp_path / "a" / "cat" / "notes.txt").write_text("hi")
    with pytest.raises(InvalidImages, match=r"cat/notes.txt is not an image file"):
        read_image_folder(tmp_path / "a")
    write_folder(tmp_path / "b")
    (tmp_path / "b" / "loose.png").write_bytes(png_bytes(grey(0)))
    with pytest.raises(InvalidImages, match=r"loose.png is not inside a class folder"):
        read_image_folder(tmp_path / "b")


def zip_members(root_prefix: str = "", n: int = 3) -> dict[str, bytes]:
    return {f"{root_prefix}{c}/{i}.png": png_bytes(grey(i + 7 * ci)) for ci, c in enumerate(("b", "a"))
            for i in range(n)}


def test_it_reads_a_zip_like_the_folder_ignoring_macos_junk(tmp_path):
    members = zip_members("wrapped/")
    members["__MACOSX/wrapped/a/._0.png"] = b"junk"
    members["wrapped/.hidden"] = b"junk"
    path = write_zip(tmp_path / "set.zip", members)
    s = read_zip(path)
    assert s.name == "set" and s.class_names == ["a", "b"] and s.images.shape == (6, 1, 5, 4)
    i = s.meta["files"].index("wrapped/b/2.png")
    assert s.labels[i] == 1 and torch.equal(s.images[i, 0], torch.from_numpy(grey(2).astype(np.float32) / 255))
    with open(path, "rb") as f:  # an open upload works the same
        assert torch.equal(read_zip(f, name="upload.zip").images, s.images)
    assert torch.equal(load_images(path).images, s.images)


@pytest.mark.parametrize("bad_name, message", [
    ("../evil/0.png", "points outside the archive"),
    ("a/../../0.png", "points outside the archive"),
    ("/etc/a/0.png", "absolute path"),
    ("C:/a/0.png", "absolute path"),
])
def test_it_rejects_zip_paths_that_leave_the_archive(tmp_path, bad_name, message):
    members = zip_members()
    members[bad_name] = png_bytes(grey(0))
    with pytest.raises(InvalidImages, match=message):
        read_zip(write_zip(tmp_path / "bad.zip", members))


def test_it_rejects_symlinks_non_images_empty_and_oversized_zips(tmp_path):
    members = zip_members()
    members["a/link.png"] = b"/etc/passwd"
    with pytest.raises(InvalidImages, match="'a/link.png' is a symbolic link"):
        read_zip(write_zip(tmp_path / "link.zip", members, symlinks=("a/link.png",)))
    members = zip_members()
    members["a/readme.md"] = b"text"
    with pytest.raises(InvalidImages, match="a/readme.md is not an image file"):
        read_zip(write_zip(tmp_path / "text.zip", members))
    with pytest.raises(InvalidImages, match="contains no images"):
        read_zip(write_zip(tmp_path / "empty.zip", {"__MACOSX/x": b"", ".DS_Store": b""}))
    with pytest.raises(InvalidImages, match="bytes uncompressed"):
        read_zip(write_zip(tmp_path / "big.zip", zip_members()), max_bytes=100)
    with pytest.raises(InvalidImages, match="more than 2 files"):
        read_zip(write_zip(tmp_path / "many.zip", zip_members()), max_files=2)
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    with pytest.raises(InvalidImages, match="not a zip archive"):
        read_zip(tmp_path / "fake.zip")
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = write_zip(tmp_path / "twice.zip", zip_members())
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("a/0.png", png_bytes(grey(1)))
    with pytest.raises(InvalidImages, match="'a/0.png' appears twice"):
        read_zip(path)


def test_it_rejects_a_corrupt_image_inside_a_zip(tmp_path):
    members = zip_members()
    members["a/1.png"] = members["a/1.png"][:30]
    with pytest.raises(InvalidImages, match="a/1.png: not a readable image"):
        read_zip(write_zip(tmp_path / "corrupt.zip", members))


# --------------------------------------------------------------------------------------------------------------------
# MNIST IDX


def write_idx(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> tuple[Path, Path]:
    suffix = ".gz" if gz else ""
    pack = gzip.compress if gz else (lambda b: b)
    ip, lp = root / f"{prefix}-images-idx3-ubyte{suffix}", root / f"{prefix}-labels-idx1-ubyte{suffix}"
    ip.write_bytes(pack(idx_bytes(0x803, images)))
    lp.write_bytes(pack(idx_bytes(0x801, labels)))
    return ip, lp


@pytest.mark.parametrize("gz", [False, True])
def test_it_reads_idx_files_raw_and_gzipped(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 6, 5), dtype=np.uint8)
    labels = np.repeat(np.array([3, 7]), 10).astype(np.uint8)
    ip, lp = write_idx(tmp_path, "train", images, labels, gz)
    s = read_idx(ip, lp)
    assert s.images.shape == (20, 1, 6, 5) and s.class_names == ["3", "7"]
    assert torch.equal(s.images[:, 0], torch.from_numpy(images.astype(np.float32) / 255))
    assert s.labels.tolist() == [0] * 10 + [1] * 10
    assert len(s.test_index) == 4 and torch.equal(load_images(ip).images, s.images)


def test_it_uses_train_and_t10k_idx_files_of_a_directory_as_the_split(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path, "train", rng.integers(0, 256, (12, 4, 4)), np.arange(12) % 3, gz=True)
    write_idx(tmp_path, "t10k", rng.integers(0, 256, (6, 4, 4)), np.arange(6) % 3, gz=True)
    s = load_images(tmp_path)
    assert s.images.shape == (18, 1, 4, 4) and len(s.test_index) == 6
    assert set(s.test_index.tolist()) == set(range(12, 18))


def test_it_rejects_bad_idx_magic_truncation_and_count_mismatch(tmp_path):
    images, labels = np.zeros((4, 3, 3)), np.zeros(4)
    ip, lp = write_idx(tmp_path, "x", images, labels, gz=False)
    ip.write_bytes(idx_bytes(0x801, labels))
    with pytest.raises(InvalidImages, match=r"x-images-idx3-ubyte: bad magic number 0x00000801"):
        read_idx(ip, lp)
    ip.write_bytes(idx_bytes(0x803, images)[:-1])
    with pytest.raises(InvalidImages, match=r"header says 4 x 3 x 3 = 36 bytes of images, the file holds 35"):
        read_idx(ip, lp)
    ip.write_bytes(idx_bytes(0x803, images))
    lp.write_bytes(idx_bytes(0x801, np.zeros(5)))
    with pytest.raises(InvalidImages, match="4 images but .* has 5 labels"):
        read_idx(ip, lp)
    lp.write_bytes(b"\x1f\x8b" + b"broken gzip")
    with pytest.raises(InvalidImages, match="cannot be read"):
        read_idx(ip, lp)


# --------------------------------------------------------------------------------------------------------------------
# CIFAR python batches


def cifar_batch(n: int, seed: int, protocol: int = 2, label_key: bytes = b"labels") -> tuple[bytes, dict]:
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"testing batch", label_key: [int(v) for v in np.arange(n) % 10],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    return pickle.dumps(batch, protocol=protocol), batch


def as_numpy1_pickle(data: bytes) -> bytes:
    """The same protocol-2 pickle as numpy 1.x (and the original CIFAR files) write it: numpy.core, not numpy._core."""
    return data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


@pytest.mark.parametrize("protocol", [2, 3, 5, "numpy1"])
def test_it_reads_cifar_batches_with_meta_names_and_the_test_batch_as_split(tmp_path, protocol):
    legacy = protocol == "numpy1"
    protocol = 2 if legacy else protocol
    data1, batch1 = cifar_batch(20, 1, protocol)
    if legacy:
        assert b"numpy._core.multiarray" in data1
        data1 = as_numpy1_pickle(data1)
    data2, batch2 = cifar_batch(10, 2, protocol)
    (tmp_path / "data_batch_1").write_bytes(data1)
    (tmp_path / "test_batch").write_bytes(data2)
    names = [f"class{i}".encode() for i in range(10)]
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol))
    s = read_cifar_batches([tmp_path / "data_batch_1", tmp_path / "test_batch"])
    assert s.images.shape == (30, 3, 32, 32) and s.class_names == [f"class{i}" for i in range(10)]
    assert torch.equal(s.test_index, torch.arange(20, 30))
    # CIFAR stores each image as 1024 red, then 1024 green, then 1024 blue values, rows first
    expected = torch.from_numpy(batch1[b"data"][3].reshape(3, 32, 32).astype(np.float32) / 255)
    assert torch.equal(s.images[3], expected)
    assert s.labels.tolist() == batch1[b"labels"] + batch2[b"labels"]
    assert torch.equal(load_images(tmp_path).images, s.images)


def test_it_reads_a_cifar_tarball_without_extracting_it(tmp_path):
    data, _ = cifar_batch(40, 3)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    s = load_images(path)
    assert s.images.shape == (40, 3, 32, 32) and s.class_names[0] == "airplane" and len(s.test_index) == 10


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_it_refuses_a_malicious_cifar_pickle_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    _, batch = cifar_batch(10, 0)
    batch[b"labels"] = Evil(marker)
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(InvalidImages, match=r"data_batch_1: .*refused to load the global posix.system"):
        read_cifar_batches([tmp_path / "data_batch_1"])
    assert not marker.exists()
    # the same payload as the meta file, beside a valid batch
    good, _ = cifar_batch(10, 0)
    (tmp_path / "data_batch_1").write_bytes(good)
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": Evil(marker)}, protocol=4))
    with pytest.raises(InvalidImages, match="batches.meta: .*refused"):
        read_cifar_batches([tmp_path / "data_batch_1"])
    assert not marker.exists()


class ForgedArray:
    """Pickles like a numpy array whose header claims 2**64 bytes while it carries none."""

    def __reduce__(self):
        state = (1, (2**32, 2**32), np.dtype("u1"), False, b"")
        return (np.ndarray.__reduce__(np.zeros(1, np.uint8))[0], (np.ndarray, (0,), b"b"), state)


def test_it_refuses_an_array_whose_shape_does_not_match_its_bytes(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": ForgedArray(), b"labels": []}, protocol=3))
    with pytest.raises(InvalidImages, match="does not match its 0 bytes"):
        read_cifar_batches([path])


def test_it_refuses_object_arrays_and_malformed_batches(tmp_path):
    path = tmp_path / "data_batch_1"
    _, batch = cifar_batch(4, 0)
    batch[b"data"] = np.array([object()] * 4, dtype=object)
    path.write_bytes(pickle.dumps({b"data": np.array([1, "x"], dtype=object), b"labels": [0]}, protocol=2))
    with pytest.raises(InvalidImages, match="not a valid CIFAR python batch"):
        read_cifar_batches([path])
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(InvalidImages, match=r"uint8 array \[n, 3072\]"):
        read_cifar_batches([path])
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2))
    with pytest.raises(InvalidImages, match="2 images but 1 labels"):
        read_cifar_batches([path])
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(InvalidImages, match="a CIFAR batch is a dict"):
        read_cifar_batches([path])
    path.write_bytes(b"\x80\x02}q\x00(")  # truncated pickle
    with pytest.raises(InvalidImages, match="not a valid CIFAR python batch"):
        read_cifar_batches([path])
