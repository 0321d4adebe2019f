"""Full scale (issue 15): the zip importer on a CIFAR-10-like stored zip, the CUDA chunk rule, fits that are not
copied on their way into an INRDataset, and the GPU bench's matmul precision switch."""

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import inr
from inr.fit import CUDA_MIN_CHUNK_INRS, default_chunk_size
from training.data import INRDataset
from training.sources import ImageSet, read_zip

CLASSES = ["airplane", "cat", "truck"]
PER_CLASS = 5


def _cifar_like_zip() -> tuple[bytes, dict[str, np.ndarray]]:
    """A stored (uncompressed) zip laid out like cifar10-train-50k.zip: cifar10-train/<class>/<name>.png, 8x8 RGB."""
    rng = np.random.default_rng(0)
    pixels = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("cifar10-train/", b"")
        for c in CLASSES:
            archive.writestr(f"cifar10-train/{c}/", b"")
            for k in range(PER_CLASS):
                name = f"cifar10-train/{c}/{c}_s_{k:06d}.png"
                array = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
                png = io.BytesIO()
                Image.fromarray(array, "RGB").save(png, format="PNG")
                archive.writestr(name, png.getvalue())
                pixels[name] = array
    return buffer.getvalue(), pixels


def test_it_reads_a_stored_cifar_like_zip_pixel_for_pixel():
    data, pixels = _cifar_like_zip()
    assert {i.compress_type for i in zipfile.ZipFile(io.BytesIO(data)).infolist()} == {zipfile.ZIP_STORED}
    images = read_zip(io.BytesIO(data), name="cifar10-train-50k.zip")
    assert images.images.shape == (len(CLASSES) * PER_CLASS, 3, 8, 8)
    assert images.images.dtype == torch.float32 and images.images.is_contiguous()
    assert images.class_names == CLASSES
    for row, name in enumerate(images.meta["files"]):
        expected = torch.from_numpy(pixels[name].transpose(2, 0, 1).astype(np.float32) / 255.0)
        assert torch.equal(images.images[row], expected), name
        assert CLASSES[int(images.labels[row])] == name.split("/")[1]


def test_it_splits_the_zip_into_disjoint_stratified_train_and_test_images():
    data, _ = _cifar_like_zip()
    images = read_zip(io.BytesIO(data), name="cifar10-train-50k.zip")
    train, test = images.train_index.numpy(), images.test_index.numpy()
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == images.num_images
    assert np.bincount(images.labels.numpy()[test], minlength=len(CLASSES)).tolist() == [1, 1, 1]


def test_it_refuses_a_zip_whose_images_differ_in_size_naming_both():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for k, size in enumerate([(8, 8), (8, 8), (9, 8)]):
            png = io.BytesIO()
            Image.new("RGB", size).save(png, format="PNG")
            archive.writestr(f"cifar10-train/cat/{k}.png", png.getvalue())
    with pytest.raises(ValueError, match=r"cat/0.png is 8x8, cifar10-train/cat/2.png is 9x8"):
        read_zip(io.BytesIO(buffer.getvalue()), name="sizes.zip")


@pytest.mark.parametrize("seeds", [1, 2, 3, 8, 30])
@pytest.mark.parametrize("images", [50_000, 60_000, 8_193, 20_000])
def test_it_gives_cuda_chunks_of_at_least_8192_inrs(seeds, images):
    for spec, pixels in ((inr.FieldSpec.siren(out_dim=3), 32 * 32), (inr.FieldSpec.mfn(), 28 * 28)):
        size = default_chunk_size(spec, pixels, seeds, torch.device("cuda"), images=images)
        chunks = -(-images // size)
        smallest = images - (chunks - 1) * size  # the last chunk
        if images * seeds >= CUDA_MIN_CHUNK_INRS:
            assert smallest * seeds >= CUDA_MIN_CHUNK_INRS, (spec.arch, size, chunks)
        assert size * seeds < 2 * CUDA_MIN_CHUNK_INRS + 2 * seeds or chunks == 1  # equal chunks, not one huge one


def test_it_puts_fewer_images_than_a_cuda_chunk_into_one_chunk():
    spec = inr.FieldSpec.siren()
    assert default_chunk_size(spec, 28 * 28, 2, torch.device("cuda"), images=1000) == 1000
    assert default_chunk_size(spec, 28 * 28, 2, torch.device("cuda")) == CUDA_MIN_CHUNK_INRS // 2


def test_it_keeps_the_cpu_chunks_of_before():
    cpu = torch.device("cpu")
    assert default_chunk_size(inr.FieldSpec.siren(), 28 * 28, 1, cpu) == 13
    assert default_chunk_size(inr.FieldSpec.mfn(), 28 * 28, 1, cpu) == 17
    assert default_chunk_size(inr.FieldSpec.mfn(), 28 * 28, 1, cpu, images=64) == 16  # 4 equal chunks
    assert default_chunk_size(inr.FieldSpec.siren(out_dim=3), 32 * 32, 2, cpu, images=50_000) == 5


def _small_images() -> ImageSet:
    rng = np.random.default_rng(1)
    return ImageSet(name="tiny", images=torch.from_numpy(rng.random((6, 1, 4, 4), dtype=np.float32)),
                    labels=torch.tensor([0, 1, 0, 1, 0, 1]), class_names=["a", "b"], train_index=[0, 1, 2, 3],
                    test_index=[4, 5])


def test_it_takes_one_fit_in_order_into_a_dataset_without_copying_it():
    images = _small_images()
    spec = inr.FieldSpec.siren(hidden=4)
    result = inr.fit(spec, images.images, seeds=2, steps=2, device="cpu", shared_init=False)
    dataset = INRDataset.from_fit(images, [result])
    for name, t in result.params.items():
        assert dataset.params[name].data_ptr() == t.data_ptr(), name
    assert dataset.psnr.data_ptr() == result.psnr.data_ptr()
    assert dataset.image_index.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert dataset.is_train.tolist() == [True] * 8 + [False] * 4


def test_it_still_sorts_shards_given_out_of_order():
    images = _small_images()
    spec = inr.FieldSpec.siren(hidden=4)
    first = inr.fit(spec, images.images[:3], seeds=2, steps=2, device="cpu", shared_init=False, chunk_size=3)
    second = inr.fit(spec, images.images[3:], seeds=2, steps=2, device="cpu", shared_init=False, chunk_size=3,
                     image_offset=3)
    whole = INRDataset.from_fit(images, [first, second])
    swapped = INRDataset.from_fit(images, [second, first])
    assert swapped.image_index.tolist() == whole.image_index.tolist()
    for name in spec.param_shapes():
        assert torch.equal(swapped.params[name], whole.params[name]), name
    assert torch.equal(swapped.psnr, whole.psnr)


def test_it_restores_the_tf32_setting_after_a_reduced_precision_run():
    from bench.fit_cuda import tf32

    before = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        with tf32(True):
            assert torch.backends.cuda.matmul.allow_tf32 is True
        assert torch.backends.cuda.matmul.allow_tf32 is False
        with pytest.raises(RuntimeError), tf32(True):
            raise RuntimeError("a failed run")
        assert torch.backends.cuda.matmul.allow_tf32 is False
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
