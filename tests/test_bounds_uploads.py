"""Image uploads are bounded from the files' headers before any pixel is decoded: pixels per image, pixels per
upload, a zip's member count and uncompressed size; the dashboard's "Try it" too. Just over a bound: a fast 400
naming it, and nothing stored."""

from __future__ import annotations

import io
import os
import time
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image as PILImage

from cinr_web.datasets.models import Image, ImageDataset
from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import Run
from tests.api_support import TINY_SPEC, client_for

pytestmark = pytest.mark.django_db


def png(width: int = 8, height: int = 8, value: int = 128) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("L", (width, height), value).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_file(members: dict[str, bytes], name: str = "set.zip") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def stored_files() -> list[str]:
    return sorted(os.path.join(root, f) for root, _, files in os.walk(default_storage.location) for f in files)


def upload(user, files: list, name: str = "set"):
    return client_for(user).post("/api/datasets/upload/", {"name": name, "files": files, "labels": ["a"]}
                                 if not files[0].name.endswith(".zip") else {"name": name, "files": files},
                                 format="multipart")


def refused_quickly(user, files: list, *words: str, seconds: float = 5.0) -> None:
    before_rows, before_files = (ImageDataset.objects.count(), Image.objects.count()), stored_files()
    started = time.perf_counter()
    response = upload(user, files, name="refused")
    assert time.perf_counter() - started < seconds
    assert response.status_code == 400, (response.status_code, response.content[:300])
    text = response.content.decode()
    assert len(text) < 2000 and all(word in text for word in words), text
    assert (ImageDataset.objects.count(), Image.objects.count()) == before_rows and stored_files() == before_files


@pytest.fixture(autouse=True)
def no_upload_throttle(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "upload": None}}


def test_it_refuses_an_image_just_over_the_pixels_per_image(normal_user, settings):
    settings.CINR_MAX_IMAGE_PIXELS = 64
    assert upload(normal_user, [SimpleUploadedFile("ok.png", png(8, 8))], name="at-limit").status_code == 201
    refused_quickly(normal_user, [SimpleUploadedFile("tall.png", png(8, 9))],
                    "tall.png: 8x9 pixels is over the limit of 64 pixels per image")
    refused_quickly(normal_user, [zip_file({"a/1.png": png(8, 8), "a/2.png": png(9, 8)})],
                    "a/2.png: 9x8 pixels is over the limit of 64")


def test_it_refuses_an_upload_just_over_the_pixels_per_upload(normal_user, settings):
    settings.CINR_MAX_UPLOAD_PIXELS = 3 * 64
    three = [SimpleUploadedFile(f"{i}.png", png(8, 8, 10 * i)) for i in range(3)]
    assert upload(normal_user, three, name="at-limit").status_code == 201
    four = [SimpleUploadedFile(f"{i}.png", png(8, 8, 10 * i)) for i in range(4)]
    refused_quickly(normal_user, four, "the upload holds more than 192 pixels (at 3.png)")
    refused_quickly(normal_user, [zip_file({f"a/{i}.png": png(8, 8, 10 * i) for i in range(4)})],
                    "more than 192 pixels")


def test_it_refuses_a_zip_just_over_its_member_count_and_uncompressed_size(normal_user, settings):
    members = {f"{c}/{i}.png": png(8, 8, 20 * i) for c in "ab" for i in range(2)}
    settings.CINR_MAX_ZIP_MEMBERS = 4
    settings.CINR_MAX_ZIP_BYTES = sum(len(data) for data in members.values())
    assert upload(normal_user, [zip_file(members)], name="at-limit").status_code == 201
    refused_quickly(normal_user, [zip_file({**members, "b/9.png": png()})], "5 members is over the limit of 4")
    settings.CINR_MAX_ZIP_MEMBERS = 100
    settings.CINR_MAX_ZIP_BYTES -= 1
    refused_quickly(normal_user, [zip_file(members)], "bytes uncompressed is over the limit of")


def test_it_refuses_a_few_kilobytes_of_zip_holding_huge_images_before_decoding(normal_user):
    huge = png(4096, 4096, 0)  # 16.7 million pixels in ~16 KB
    archive = zip_file({f"a/{i}.png": huge for i in range(20)})
    assert len(archive) < 50_000
    refused_quickly(normal_user, [archive], "4096x4096 pixels is over the limit of 1048576", seconds=3.0)


def test_it_refuses_a_try_it_picture_just_over_the_pixels_per_image(tiny_digits_dataset, normal_user, settings):
    settings.CINR_MAX_IMAGE_PIXELS = 64
    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=TINY_SPEC.to_dict(), status="succeeded")
    encoder = Run.objects.create(kind="simclr", status="succeeded", inrset=inrset)
    client = Client()
    client.force_login(normal_user)
    runs_before = Run.objects.count()
    response = client.post(f"/runs/{encoder.pk}/try/", {"file": SimpleUploadedFile("big.png", png(8, 9))})
    assert response.status_code == 400 and "8×9 pixels is over the limit of 64" in response.json()["error"]
    assert Run.objects.count() == runs_before
