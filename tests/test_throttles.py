"""Dataset uploads and the dashboard's "Try it" are throttled per user (the model API's own throttle is tested in
tests/test_api_embed_errors.py): over the rate, 429 with Retry-After, before any work."""

from __future__ import annotations

import io

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image as PILImage

from cinr_web.datasets.models import ImageDataset
from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import Run
from tests.api_support import TINY_SPEC, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """Sets throttle rates; the counts of earlier tests' users (ids may repeat) are cleared from Redis first."""
    server, prefix = redis.Redis.from_url(settings.REDIS_URL), settings.CACHES["default"]["KEY_PREFIX"]
    for key in server.scan_iter(match=f"{prefix}:*throttle_*"):
        server.delete(key)

    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}}

    return set_rates


def png(value: int) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    PILImage.new("L", (8, 8), value).save(buffer, format="PNG")
    return SimpleUploadedFile(f"{value}.png", buffer.getvalue())


def test_it_throttles_uploads_per_user(normal_user, staff_user, rates):
    rates(upload="2/hour")
    client = client_for(normal_user)
    codes = [client.post("/api/datasets/upload/", {"name": f"set-{i}", "files": [png(i)]}, format="multipart")
             .status_code for i in range(3)]
    assert codes == [201, 201, 429]
    throttled = client.post("/api/datasets/upload/", {"name": "late", "files": [png(9)]}, format="multipart")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert ImageDataset.objects.count() == 2  # nothing stored past the rate
    other = client_for(staff_user).post("/api/datasets/upload/", {"name": "other", "files": [png(7)]},
                                        format="multipart")
    assert other.status_code == 201
    assert client.get("/api/datasets/").status_code == 200  # reads are not throttled


def test_it_throttles_try_it_per_user(tiny_digits_dataset, normal_user, staff_user, rates):
    rates(**{"try": "2/minute"})
    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=TINY_SPEC.to_dict(), status="succeeded")
    encoder = Run.objects.create(kind="simclr", status="succeeded", inrset=inrset)
    client = Client()
    client.force_login(normal_user)
    # a file that is neither image nor weights: refused (400) after the throttle counted it
    codes = [client.post(f"/runs/{encoder.pk}/try/", {"file": SimpleUploadedFile("x.png", b"no")}).status_code
             for _ in range(3)]
    assert codes == [400, 400, 429]
    throttled = client.post(f"/runs/{encoder.pk}/try/", {"file": SimpleUploadedFile("x.png", b"no")})
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    other = Client()
    other.force_login(staff_user)
    assert other.post(f"/runs/{encoder.pk}/try/", {"file": SimpleUploadedFile("x.png", b"no")}).status_code == 400
