"""REST API: datasets (list, detail, images, PNG), uploads (images, zip) and built-in imports, with permissions."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from rest_framework.test import APIClient

from cinr_web.datasets.models import Image, ImageDataset

pytestmark = pytest.mark.django_db


def png(value: int, size=(8, 8), mode="L") -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(np.full(size if mode == "L" else (*size, 3), value, np.uint8), mode).save(buffer, "PNG")
    return buffer.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_it_refuses_anonymous_reads_and_writes(tiny_digits_dataset):
    anonymous = client_for()
    for url in ("/api/datasets/", f"/api/datasets/{tiny_digits_dataset.pk}/",
                f"/api/datasets/{tiny_digits_dataset.pk}/images/",
                f"/api/datasets/{tiny_digits_dataset.pk}/images/0/image.png"):
        assert anonymous.get(url).status_code in (401, 403), url
    assert anonymous.post("/api/datasets/upload/", {}).status_code in (401, 403)
    assert anonymous.post("/api/datasets/import-builtin/", {"name": "digits"}).status_code in (401, 403)


def test_it_lists_and_shows_datasets_and_their_images(tiny_digits_dataset, normal_user):
    client = client_for(normal_user)
    listing = client.get("/api/datasets/").json()
    assert listing["count"] == 1 and listing["results"][0]["name"] == "tiny-digits"
    detail = client.get(f"/api/datasets/{tiny_digits_dataset.pk}/").json()
    assert detail["num_images"] == 40 and detail["height"] == 8 and len(detail["class_names"]) == 10
    page = client.get(f"/api/datasets/{tiny_digits_dataset.pk}/images/", {"page": 2, "page_size": 16}).json()
    assert page["count"] == 40 and [i["index"] for i in page["results"]] == list(range(16, 32))
    assert client.get(f"/api/datasets/{tiny_digits_dataset.pk}/images/", {"page": 9}).status_code == 404
    images = client.get(f"/api/datasets/{tiny_digits_dataset.pk}/images/").json()["results"]
    assert [i["index"] for i in images] == list(range(40))
    assert {i["split"] for i in images} == {"train", "test"}
    picture = client.get(images[3]["url"])
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert PILImage.open(io.BytesIO(b"".join(picture.streaming_content))).size == (8, 8)
    assert client.get(f"/api/datasets/{tiny_digits_dataset.pk}/images/40/image.png").status_code == 404
    assert client.get("/api/datasets/999999/").status_code == 404
    assert client.get("/api/datasets/999999/images/").status_code == 404


def test_it_creates_a_dataset_from_labelled_images(normal_user):
    client = client_for(normal_user)
    files = [SimpleUploadedFile(f"im{i}.png", png(40 * i), "image/png") for i in range(4)]
    response = client.post("/api/datasets/upload/", {"name": "mine", "files": files,
                                                      "labels": ["cat", "dog", "cat", "dog"]}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["num_images"] == 4 and sorted(body["class_names"]) == ["cat", "dog"]
    assert body["created_by"] == normal_user.username and body["source"] == "upload"
    assert Image.objects.filter(dataset_id=body["id"]).count() == 4


def test_it_creates_a_dataset_from_a_zip(normal_user):
    archive = zip_of({f"{label}/{i}.png": png(30 * i + (100 if label == "b" else 0))
                      for label in ("a", "b") for i in range(3)})
    response = client_for(normal_user).post(
        "/api/datasets/upload/", {"name": "zipped", "files": [SimpleUploadedFile("set.zip", archive)]},
        format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["num_images"] == 6 and response.json()["class_names"] == ["a", "b"]


@pytest.mark.parametrize("files, labels, message", [
    ({"x.zip": zip_of({"../evil/a.png": png(1), "a/b.png": png(2)})}, None, ".."),
    ({"x.zip": zip_of({})}, None, "empty|no image"),
    ({"x.zip": b"not a zip at all"}, None, "zip"),
    ({"a.png": png(1), "b.png": png(2, size=(9, 9))}, ["x", "y"], "size"),
    ({"a.png": png(1), "notes.txt": b"hello"}, ["x", "y"], "notes.txt"),
    ({"a.png": b"\x89PNG\r\n\x1a\ncorrupt"}, ["x"], "a.png"),
])
def test_it_refuses_bad_uploads_and_stores_nothing(normal_user, files, labels, message):
    uploads = [SimpleUploadedFile(name, data) for name, data in files.items()]
    data = {"name": "bad", "files": uploads}
    if labels is not None:
        data["labels"] = labels
    response = client_for(normal_user).post("/api/datasets/upload/", data, format="multipart")
    assert response.status_code == 400, response.content
    assert re.search(message, str(response.json()), flags=re.IGNORECASE), response.json()
    assert not ImageDataset.objects.filter(name="bad").exists() and Image.objects.count() == 0


def test_it_checks_upload_fields(normal_user, tiny_digits_dataset, settings):
    client = client_for(normal_user)
    def one():
        return SimpleUploadedFile("a.png", png(1))

    assert "files" in client.post("/api/datasets/upload/", {"name": "x"}, format="multipart").json()
    taken = client.post("/api/datasets/upload/", {"name": "tiny-digits", "files": [one()]}, format="multipart")
    assert taken.status_code == 400 and "already exists" in str(taken.json())
    labels = client.post("/api/datasets/upload/", {"name": "x", "files": [one(), one()], "labels": ["a", "b", "c"]},
                         format="multipart")
    assert labels.status_code == 400 and "labels" in labels.json()
    settings.CINR_MAX_UPLOAD_BYTES = 10
    big = client.post("/api/datasets/upload/", {"name": "x", "files": [one()]}, format="multipart")
    assert big.status_code == 400 and "limit" in str(big.json())
    huge = client.post("/api/datasets/upload/", {"name": "x", "files": [SimpleUploadedFile("a.zip", bytes(2 << 20))]},
                       format="multipart")  # refused from its Content-Length, before the body is parsed
    assert huge.status_code == 400 and "the upload is" in str(huge.json())
    assert client.post("/api/datasets/upload/", {"name": "x"}, format="json").status_code == 415


def test_it_imports_builtins_for_staff_only(normal_user, staff_user):
    assert client_for(normal_user).post("/api/datasets/import-builtin/", {"name": "digits"}).status_code == 403
    client = client_for(staff_user)
    assert client.post("/api/datasets/import-builtin/", {"name": "cifar"}).status_code == 400
    first = client.post("/api/datasets/import-builtin/", {"name": "digits"})
    assert first.status_code == 201 and first.json()["num_images"] == 1797
    again = client.post("/api/datasets/import-builtin/", {"name": "digits"})
    assert again.json()["id"] == first.json()["id"] and ImageDataset.objects.count() == 1


@pytest.mark.parametrize("files, expected", [
    ({"good.png": png(1), "bad.png": b"not a picture"}, "bad.png: not a readable image"),
    ({"small.png": png(1), "big.png": png(1, size=(9, 9))}, "small.png is 8x8, big.png is 9x9"),
    ({"good.png": png(1), "notes.txt": b"hello"}, "notes.txt is not an image file"),
    ({"x.zip": zip_of({"cat/a.png": png(1), "cat/b.png": b"not a picture"})}, "cat/b.png: not a readable image"),
])
def test_it_names_files_as_they_were_sent_in_upload_errors(normal_user, files, expected):
    uploads = [SimpleUploadedFile(name, data) for name, data in files.items()]
    labels = {} if "x.zip" in files else {"labels": "cat"}
    response = client_for(normal_user).post("/api/datasets/upload/", {"name": "bad", "files": uploads, **labels},
                                            format="multipart")
    assert response.status_code == 400
    message = str(response.json())
    assert expected in message, message
    for internal in ("/tmp", "cinr-upload", "000001-", "upload:", "BytesIO", "0x"):  # no server-side names
        assert internal not in message, (internal, message)
