"""Dataset imports: uploads and paths are stored all or nothing; malformed input fails with a clear message."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from cinr_web.datasets.models import Image, ImageDataset
from cinr_web.datasets.services import import_path, import_upload, load_image_set
from training.sources import InvalidImages

pytestmark = pytest.mark.django_db


def png_bytes(size=(8, 8), value=128, mode="L") -> bytes:
    buffer = io.BytesIO()
    PILImage.new(mode, size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_upload(members: dict[str, bytes], name="set.zip") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def stored_files() -> list[str]:
    found = []
    for root, _, files in os.walk(default_storage.location):
        found += [os.path.join(root, f) for f in files]
    return found


def assert_nothing_stored(before_files):
    assert ImageDataset.objects.count() == 0
    assert Image.objects.count() == 0
    assert stored_files() == before_files


def test_it_imports_a_zip_with_classes_and_reads_it_back():
    members = {f"{c}/{i}.png": png_bytes(value=40 * i + len(c)) for c in ("cat", "dog") for i in range(3)}
    dataset = import_upload("pets", zip_upload(members))
    assert (dataset.num_images, dataset.channels, dataset.height, dataset.width) == (6, 1, 8, 8)
    assert dataset.class_names == ["cat", "dog"]
    assert dataset.images.count() == 6
    image_set = load_image_set(dataset)
    assert image_set.images.shape == (6, 1, 8, 8)
    # PNG and arrays file hold the same pixels
    first = dataset.images.get(index=0)
    with first.file.open("rb") as f:
        png = np.asarray(PILImage.open(f))
    assert np.array_equal(png, (image_set.images[0, 0].numpy() * 255).round().astype(np.uint8))
    assert sorted(image_set.labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_it_imports_loose_files_with_labels():
    files = [SimpleUploadedFile(f"{i}.png", png_bytes(value=i * 30)) for i in range(4)]
    dataset = import_upload("loose", files, labels=["a", "b", "a", "b"])
    assert dataset.class_names == ["a", "b"] and dataset.num_images == 4


@pytest.mark.parametrize("case, expected", [
    ("corrupt", "cannot"),
    ("mixed sizes", "differ in size"),
    ("dotdot", "outside the archive"),
    ("non-image", "not an image file"),
    ("empty", "no images"),
])
def test_it_refuses_malformed_zips_and_stores_nothing(case, expected):
    good = png_bytes()
    members = {
        "corrupt": {"a/1.png": good, "a/2.png": b"\x89PNG\r\n\x1a\nthis is not really a png"},
        "mixed sizes": {"a/1.png": good, "b/2.png": png_bytes(size=(9, 8))},
        "dotdot": {"a/1.png": good, "../evil.png": good},
        "non-image": {"a/1.png": good, "a/readme.txt": b"hello"},
        "empty": {},
    }[case]
    before = stored_files()
    with pytest.raises(InvalidImages) as info:
        import_upload("bad", zip_upload(members))
    assert expected in str(info.value).lower()
    assert_nothing_stored(before)


def test_it_refuses_malformed_loose_files_and_names_them():
    before = stored_files()
    with pytest.raises(InvalidImages, match="notes.txt"):
        import_upload("bad", [SimpleUploadedFile("1.png", png_bytes()), SimpleUploadedFile("notes.txt", b"x")])
    with pytest.raises(InvalidImages, match="broken.png"):
        import_upload("bad", [SimpleUploadedFile("broken.png", b"garbage")])
    with pytest.raises(InvalidImages, match="not a zip"):
        import_upload("bad", SimpleUploadedFile("x.zip", b"PK nonsense"))
    assert_nothing_stored(before)


def test_it_refuses_a_taken_name_and_an_oversize_upload(settings):
    import_upload("once", zip_upload({"a/1.png": png_bytes()}))
    with pytest.raises(InvalidImages, match="exists already"):
        import_upload("once", zip_upload({"a/1.png": png_bytes()}))
    settings.CINR_MAX_UPLOAD_BYTES = 10
    with pytest.raises(InvalidImages, match="over the limit"):
        import_upload("big", zip_upload({"a/1.png": png_bytes()}))
    assert ImageDataset.objects.count() == 1


def test_it_imports_an_image_folder_path(tmp_path):
    for c in ("x", "y"):
        (tmp_path / "folder" / c).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "folder" / c / f"{i}.png").write_bytes(png_bytes(value=i * 100))
    dataset = import_path(tmp_path / "folder", name="folder-set")
    assert dataset.source == "import" and dataset.num_images == 4 and dataset.class_names == ["x", "y"]


def test_it_rolls_back_rows_and_files_when_storing_fails_half_way(monkeypatch):
    from cinr_web.datasets import services

    calls = {"n": 0}
    real = services.save_bytes

    def failing_save(name, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(name, data)

    monkeypatch.setattr(services, "save_bytes", failing_save)
    before = stored_files()
    with pytest.raises(OSError, match="disk full"):
        import_upload("half", zip_upload({f"a/{i}.png": png_bytes() for i in range(4)}))
    assert_nothing_stored(before)


def test_the_tiny_digits_fixture(tiny_digits_dataset):
    assert tiny_digits_dataset.num_images == 40
    image_set = tiny_digits_dataset.load()
    assert image_set.train_index.numel() == 30 and image_set.test_index.numel() == 10


def test_deleting_a_dataset_deletes_its_files(django_capture_on_commit_callbacks):
    dataset = import_upload("gone", zip_upload({"a/1.png": png_bytes(), "b/2.png": png_bytes()}))
    names = [dataset.arrays.name] + [image.file.name for image in dataset.images.all()]
    assert all(default_storage.exists(name) for name in names)
    with django_capture_on_commit_callbacks(execute=True):
        dataset.delete()
    assert not any(default_storage.exists(name) for name in names)


def test_media_is_served_to_logged_in_users_only(client, normal_user):
    dataset = import_upload("served", zip_upload({"a/1.png": png_bytes()}))
    url = "/media/" + dataset.images.get().file.name
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(normal_user)
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"\x89PNG")
